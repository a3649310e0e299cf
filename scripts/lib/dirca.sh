# shellcheck shell=bash
# The test CA of the directory servers (scripts/slapd.sh, scripts/samba.sh),
# under CA_DIR (.testbed/dirca), which the sourcing script sets. Each script
# signs its own server certificate with it.

# make_ca makes the CA once; flock keeps two scripts run at once from
# racing.
make_ca() {
	mkdir -p "$CA_DIR"
	(
		flock 9
		[[ -s "$CA_DIR/ca.crt" && -s "$CA_DIR/ca.key" ]] && exit 0
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=secrets-rotation directory test CA" \
			-keyout "$CA_DIR/ca.key" -out "$CA_DIR/ca.crt" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
		chmod 600 "$CA_DIR/ca.key"
	) 9>"$CA_DIR/.lock"
}
