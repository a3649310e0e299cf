#!/usr/bin/env bash
# A Samba Active Directory domain controller for the directory rotation tests.
#
#   scripts/samba.sh up       install Samba from Debian when missing, provision the
#                             domain ROTATION.TEST into .testbed/samba (once), start
#                             the DC on 127.0.0.1 and write .testbed/samba.env
#   scripts/samba.sh down     stop it
#   scripts/samba.sh status   print whether it runs (exit 1 when it does not)
#
# The DC is a private instance: its own smb.conf, private, state, lock, cache,
# pid, socket and log directories under .testbed/samba; it never reads or
# writes the system's /etc/samba, /var/lib/samba or /etc/krb5.conf. It binds
# 127.0.0.1 only, on the fixed ports AD clients expect: LDAP 389, LDAPS 636,
# global catalog 3268/3269, Kerberos 88 and kpasswd 464 (TCP and UDP), all
# below 32768 and checked free first. It runs only the services the tests
# need (LDAP and the KDC): no SMB, NetBIOS, RPC or DNS server, so no DNS is
# needed anywhere: clients are given 127.0.0.1 and the realm.
#
# Provisioned content:
#   realm ROTATION.TEST, NetBIOS domain ROTATION, DC dc1.rotation.test
#   Administrator                   domain admin (set-up and test fixtures)
#   OU=ServiceAccounts              service accounts; the delegated account
#   CN=rotator,OU=Delegated         may reset passwords (the Reset Password
#                                   right) in OU=ServiceAccounts only
#   domain password policy          complexity on, history 24, minimum age 0
#   PSO "minage" (group minage)     minimum password age 1 day
# Authentication events are logged as JSON (auth_json_audit) to
# .testbed/samba/log/auth.log, which the tests read to count refused binds
# and Kerberos logins on the server side.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TB="$ROOT/.testbed"
DIR="$TB/samba"
CA_DIR="$TB/dirca"
ENV_FILE="$TB/samba.env"
CONF="$DIR/etc/smb.conf"
REALM="ROTATION.TEST"
DOMAIN="ROTATION"
BASE_DN="DC=rotation,DC=test"
HOST="dc1"
FQDN="dc1.rotation.test"
TCP_PORTS="88 389 464 636 3268 3269"
UDP_PORTS="88 389 464"
# Samba always starts its RPC endpoint servers in the DC's main process;
# the dynamic range (default 49152-65535, the ephemeral range) is moved
# below 32768.
RPC_RANGE="${SAMBA_RPC_PORT_RANGE:-21900-21999}"

log() { printf '[samba.sh] %s\n' "$*" >&2; }
die() { printf '[samba.sh] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2fs", b-a}'; }

# randpw prints a random password that meets AD complexity (upper, lower,
# digit, symbol) with no character that needs shell or LDIF quoting.
randpw() { printf 'Aa1-%s' "$(openssl rand -hex 16)"; }

tcp_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
udp_free() { ! ss -Hlun "sport = :$1" | grep -q .; }

install_pkgs() {
	if [[ -x /usr/sbin/samba && -x /usr/bin/samba-tool && -x /usr/bin/ldapsearch ]] &&
		dpkg-query -W -f='${Status}\n' samba-ad-dc samba-dsdb-modules 2>/dev/null | grep -c '^install ok installed$' | grep -qx 2; then
		return
	fi
	local t0 policy=/usr/sbin/policy-rc.d created=0
	t0="$(now)"
	log "Samba missing: installing it from Debian"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# policy-rc.d keeps the packages from starting the system's smbd,
	# nmbd, winbind or samba-ad-dc services.
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
	fi
	# No recommends: libnss-winbind and libpam-winbind would edit the
	# system's nsswitch and PAM configuration.
	apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
		samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind \
		ldap-utils >/dev/null
	[[ $created == 1 ]] && rm -f "$policy"
	log "Samba installed in $(elapsed "$t0")"
}

# make_ca makes the directory servers' test CA once (shared with
# scripts/slapd.sh; flock keeps two scripts run at once from racing).
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

server_cert() {
	local d="$DIR/tls"
	mkdir -p "$d"
	[[ -s "$d/server.crt" ]] && cmp -s "$CA_DIR/ca.crt" "$d/ca.crt" && return
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$FQDN" \
		-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
	printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$FQDN" >"$d/server.ext"
	openssl x509 -req -in "$d/server.csr" -CA "$CA_DIR/ca.crt" -CAkey "$CA_DIR/ca.key" \
		-CAcreateserial -days 3650 -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null
	cp "$CA_DIR/ca.crt" "$d/ca.crt"
	chmod 600 "$d/server.key"
}

write_conf() {
	mkdir -p "$DIR/etc" "$DIR/log" "$DIR/run" "$DIR/lock" "$DIR/cache" "$DIR/state" "$DIR/private"
	cat >"$CONF" <<-EOF
		# Generated by scripts/samba.sh: a private test domain controller.
		[global]
		    netbios name = ${HOST^^}
		    workgroup = $DOMAIN
		    realm = $REALM
		    server role = active directory domain controller
		    interfaces = 127.0.0.1
		    bind interfaces only = yes
		    disable netbios = yes
		    server services = ldap, kdc
		    rpc server dynamic port range = $RPC_RANGE
		    dns proxy = no
		    private dir = $DIR/private
		    binddns dir = $DIR/bind-dns
		    state directory = $DIR/state
		    lock directory = $DIR/lock
		    cache directory = $DIR/cache
		    pid directory = $DIR/run
		    ncalrpc dir = $DIR/run/ncalrpc
		    winbindd socket directory = $DIR/run/winbindd
		    ntp signd socket directory = $DIR/run/ntp_signd
		    usershare path = $DIR/state/usershares
		    logging = file
		    log file = $DIR/log/samba.log
		    max log size = 0
		    # Every authentication (LDAP bind, Kerberos AS-REQ) as one JSON
		    # line in its own file: the tests count refused ones there.
		    log level = 1 auth_json_audit:3@$DIR/log/auth.log
		    tls enabled = yes
		    tls keyfile = $DIR/tls/server.key
		    tls certfile = $DIR/tls/server.crt
		    tls cafile = $DIR/tls/ca.crt
		    # Simple binds with a password only over TLS (AD's default).
		    ldap server require strong auth = yes

		[sysvol]
		    path = $DIR/state/sysvol
		    read only = no

		[netlogon]
		    path = $DIR/state/sysvol/${REALM,,}/scripts
		    read only = no
	EOF
}

stool() { samba-tool "$@" -s "$CONF" -H "$DIR/private/sam.ldb"; }

provision() {
	local t0 apw rpw
	t0="$(now)"
	rm -rf "$DIR/private" "$DIR/state" "$DIR/lock" "$DIR/cache" "$DIR/bind-dns" "$DIR/etc"
	mkdir -p "$DIR/etc"
	apw="$(randpw)"
	rpw="$(randpw)"
	# An empty configuration, so that nothing of the system's smb.conf is
	# copied into the domain's; write_conf then writes the whole file.
	: >"$DIR/etc/provision.conf"
	samba-tool domain provision -s "$DIR/etc/provision.conf" --targetdir="$DIR" \
		--realm="$REALM" --domain="$DOMAIN" --server-role=dc --dns-backend=NONE \
		--host-name="$HOST" --host-ip=127.0.0.1 --adminpass="$apw" \
		--option="interfaces = 127.0.0.1" --option="bind interfaces only = yes" \
		--option="disable netbios = yes" >"$DIR/log/provision.log" 2>&1 ||
		{ tail -20 "$DIR/log/provision.log" >&2; die "samba-tool domain provision failed"; }
	write_conf
	stool domain passwordsettings set --complexity=on --history-length=24 \
		--min-pwd-age=0 --max-pwd-age=0 --min-pwd-length=7 --account-lockout-threshold=0 >/dev/null
	stool ou create "OU=ServiceAccounts,$BASE_DN" >/dev/null
	stool ou create "OU=Delegated,$BASE_DN" >/dev/null
	stool user create rotator "$rpw" --userou="OU=Delegated" >/dev/null
	stool user setexpiry rotator --noexpiry >/dev/null
	# The Reset Password control access right on the OU, inherited by its
	# user objects: the rotator may reset those passwords and no others.
	stool dsacl set --objectdn="OU=ServiceAccounts,$BASE_DN" \
		--sddl="(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;$(sid_of rotator))" >/dev/null
	stool group add minage >/dev/null
	stool domain passwordsettings pso create minage 10 --min-pwd-age=1 \
		--complexity=on --history-length=24 --min-pwd-length=7 --max-pwd-age=0 >/dev/null
	stool domain passwordsettings pso apply minage minage >/dev/null
	printf '%s' "$apw" >"$DIR/admin.pw"
	printf '%s' "$rpw" >"$DIR/rotator.pw"
	chmod 600 "$DIR/admin.pw" "$DIR/rotator.pw"
	log "domain $REALM provisioned in $(elapsed "$t0")"
}

sid_of() {
	stool user show "$1" --attributes=objectSid | sed -n 's/^objectSid: //p'
}

pid_of() {
	local f="$DIR/run/samba.pid"
	[[ -s $f ]] && awk '{print $1; exit}' "$f"
}

running() {
	local pid
	pid="$(pid_of)" && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

ldaps_ok() {
	LDAPTLS_CACERT="$DIR/tls/ca.crt" ldapsearch -H ldaps://127.0.0.1:636 -x \
		-D "Administrator@${REALM,,}" -y "$DIR/admin.pw" -s base -b "$BASE_DN" dn >/dev/null 2>&1
}

up() {
	local t0 p
	t0="$(now)"
	install_pkgs
	mkdir -p "$DIR/log"
	chmod 700 "$DIR"
	if running; then
		log "Samba DC already running"
		write_env
		return
	fi
	for p in $TCP_PORTS; do tcp_free "$p" || die "TCP port $p is in use: the Samba DC needs it"; done
	for p in $UDP_PORTS; do udp_free "$p" || die "UDP port $p is in use: the Samba DC needs it"; done
	make_ca
	server_cert
	if [[ ! -s "$DIR/private/sam.ldb" || ! -s "$DIR/admin.pw" ]]; then
		provision
	fi
	write_conf
	setsid samba --foreground --no-process-group -s "$CONF" \
		</dev/null >>"$DIR/log/samba.out" 2>&1 &
	local i
	for i in $(seq 1 300); do
		ldaps_ok && break
		sleep 0.1
	done
	ldaps_ok || { tail -30 "$DIR/log/samba.log" "$DIR/log/samba.out" >&2 || true; die "the Samba DC did not answer on LDAPS"; }
	write_env
	log "Samba $(samba --version | sed 's/Version //') DC up on 127.0.0.1 (realm $REALM) in $(elapsed "$t0")"
}

write_env() {
	cat >"$ENV_FILE" <<-EOF
		export SAMBA_HOST=127.0.0.1
		export SAMBA_LDAP_PORT=389
		export SAMBA_LDAPS_PORT=636
		export SAMBA_KDC=127.0.0.1:88
		export SAMBA_REALM=$REALM
		export SAMBA_DOMAIN=$DOMAIN
		export SAMBA_DC_FQDN=$FQDN
		export SAMBA_CA_FILE=$DIR/tls/ca.crt
		export SAMBA_BASE_DN=$BASE_DN
		export SAMBA_ADMIN_USER=Administrator
		export SAMBA_ADMIN_DN=CN=Administrator,CN=Users,$BASE_DN
		export SAMBA_ADMIN_PASSWORD=$(cat "$DIR/admin.pw")
		export SAMBA_ROTATOR_DN=CN=rotator,OU=Delegated,$BASE_DN
		export SAMBA_ROTATOR_PASSWORD=$(cat "$DIR/rotator.pw")
		export SAMBA_SERVICES_OU=OU=ServiceAccounts,$BASE_DN
		export SAMBA_MINAGE_GROUP_DN=CN=minage,CN=Users,$BASE_DN
		export SAMBA_AUTH_LOG=$DIR/log/auth.log
	EOF
	chmod 600 "$ENV_FILE"
	log "wrote $ENV_FILE"
}

down() {
	if running; then
		local pid
		pid="$(pid_of)"
		kill "$pid"
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && die "samba (pid $pid) did not stop"
		log "Samba DC stopped"
	fi
}

case "${1:-}" in
up) up ;;
down) down ;;
status)
	if running; then
		echo "Samba DC running (pid $(pid_of)) on 127.0.0.1, realm $REALM"
	else
		echo "Samba DC not running"
		exit 1
	fi
	;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac
