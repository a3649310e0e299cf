# shellcheck shell=bash
# The test CA of the database servers (scripts/bed/postgres.sh, mariadb.sh):
# one CA and one server certificate for 127.0.0.1/localhost, under
# .testbed/dbca. Sourced after bed.sh or testbed-common.sh (it needs log
# and TB).
CA_DIR="$TB/dbca"

make_ca() {
	[[ -s "$CA_DIR/server.crt" ]] && return
	mkdir -p "$CA_DIR"
	log "generating the test CA and a server certificate for 127.0.0.1/localhost"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=secrets-rotation test CA" \
		-keyout "$CA_DIR/ca.key" -out "$CA_DIR/ca.crt" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		-keyout "$CA_DIR/server.key" -out "$CA_DIR/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$CA_DIR/server.ext"
	openssl x509 -req -in "$CA_DIR/server.csr" -CA "$CA_DIR/ca.crt" -CAkey "$CA_DIR/ca.key" \
		-CAcreateserial -days 3650 -extfile "$CA_DIR/server.ext" -out "$CA_DIR/server.crt" 2>/dev/null
	chmod 600 "$CA_DIR/ca.key" "$CA_DIR/server.key"
}

# randpw prints a random password made only of characters that need no
# quoting in a DSN, a connection string or the shell.
randpw() { openssl rand -hex 16; }
