package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/go-ldap/ldap/v3"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/secrets-rotation/secrets-rotation/internal/httpsclient"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed/keyprovider"
)

// setup prepares what one sample of a function needs (a KMS key, an IAM
// user, a CA, a database user) and returns the function's settings and the
// secret's first value.
type setup func(ctx context.Context, b *bed) (env []string, initial string, err error)

// bed holds the clients and settings that setups share.
type bed struct {
	cfg   aws.Config
	em    *localrun.Emulator
	db    map[string]string // .testbed/db.env
	caARN string            // the tlscert issuer secret, made once
	// secretName is the name of the secret the next sample rotates.
	secretName string
	// keys is the test provider of API keys the provider function rotates
	// against, started once, with the secret holding its admin token.
	keys    *keyprovider.Provider
	keysTok string
	// redis is .testbed/redis.env; redisAdmin its admin user's client;
	// redisMaster the master secret of the redis samples, made once.
	redis       map[string]string
	redisAdmin  *goredis.Client
	redisMaster string
	// rmq is .testbed/rabbitmq.env; rmqMaster the master secret (an
	// administrator made once) that the RabbitMQ samples name.
	rmq       map[string]string
	rmqMaster string
}

var cases = map[string]setup{
	"generic": func(context.Context, *bed) ([]string, string, error) {
		return []string{"SECRET_KIND=password", "SECRET_FIELD=password"}, `{"username":"bench","password":"initial"}`, nil
	},
	"datakey": func(ctx context.Context, b *bed) ([]string, string, error) {
		out, err := kms.NewFromConfig(b.cfg).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("bench datakey")})
		if err != nil {
			return nil, "", fmt.Errorf("create KMS key: %w", err)
		}
		return []string{"KMS_KEY_ID=" + aws.ToString(out.KeyMetadata.Arn)}, "{}", nil
	},
	"jwtkeys": func(context.Context, *bed) ([]string, string, error) {
		return nil, "{}", nil
	},
	"iamkey": func(ctx context.Context, b *bed) ([]string, string, error) {
		user := "bench-" + localrun.NewToken()[:8]
		// Under the iamkey function's default IAM_USER_PATH, bound to the
		// secret the sample rotates.
		if _, err := iam.NewFromConfig(b.cfg).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user), Path: aws.String("/secrets-rotation/"),
			Tags: []iamtypes.Tag{{Key: aws.String("secrets-rotation:secret"), Value: aws.String(b.secretName)}}}); err != nil {
			return nil, "", fmt.Errorf("create IAM user: %w", err)
		}
		return nil, `{"userName":"` + user + `"}`, nil
	},
	"tlscert": func(ctx context.Context, b *bed) ([]string, string, error) {
		if b.caARN == "" {
			arn, err := b.makeCA(ctx)
			if err != nil {
				return nil, "", err
			}
			b.caARN = arn
		}
		return []string{"CA_SECRET_ID=" + b.caARN, "COMMON_NAME=bench.example.com", "SUBJECT_ALTERNATIVE_NAMES=bench.example.com"},
			`{"commonName":"bench.example.com","subjectAlternativeNames":["bench.example.com"]}`, nil
	},
	"provider": func(ctx context.Context, b *bed) ([]string, string, error) {
		if err := b.needKeyProvider(ctx); err != nil {
			return nil, "", err
		}
		cfg, err := filepath.Abs("functions/provider/configs/examplesaas.json")
		if err != nil {
			return nil, "", err
		}
		return []string{"PROVIDER_CONFIG_FILE=" + cfg, "PROVIDER_BASE_URL=" + b.keys.URL, "PROVIDER_CA_FILE=" + b.keys.CAFile, "ADMIN_SECRET_ID=" + b.keysTok}, "{}", nil
	},
	"postgres": func(ctx context.Context, b *bed) ([]string, string, error) {
		user, pw := "bench_"+localrun.NewToken()[:8], randomPassword()
		if err := b.pgExec(ctx, "CREATE ROLE "+pgx.Identifier{user}.Sanitize()+" LOGIN PASSWORD '"+pw+"'"); err != nil {
			return nil, "", err
		}
		return []string{"DB_CA_BUNDLE=" + b.db["PG_CA_FILE"]}, b.dbSecret("postgres", "PG", user, pw), nil
	},
	"redis": func(ctx context.Context, b *bed) ([]string, string, error) {
		if err := b.needRedis(ctx); err != nil {
			return nil, "", err
		}
		user, pw := "bench_"+localrun.NewToken()[:8], randomPassword()
		if err := b.redisAdmin.Do(ctx, "ACL", "SETUSER", user, "reset", "on", "~bench:*", "+@read", "+@connection", "#"+redis.PasswordHash(pw)).Err(); err != nil {
			return nil, "", fmt.Errorf("create ACL user: %w", err)
		}
		doc, _ := json.Marshal(map[string]any{
			"engine": "redis", "host": b.redis["REDIS_HOST"], "port": b.redis["REDIS_TLS_PORT"],
			"username": user, "password": pw, "masterarn": b.redisMaster,
		})
		return []string{"REDIS_CA_BUNDLE=" + b.redis["REDIS_CA_FILE"]}, string(doc), nil
	},
	// Alternating users, the strategy docs/rabbitmq.md recommends: the cold
	// rotation makes the clone, the warm ones go back and forth.
	"rabbitmq": func(ctx context.Context, b *bed) ([]string, string, error) {
		if err := b.needRabbitMQ(ctx); err != nil {
			return nil, "", err
		}
		user, pw := "bench_"+localrun.NewToken()[:8], randomPassword()
		if err := b.rmqPutUser(ctx, user, pw, ""); err != nil {
			return nil, "", err
		}
		doc, _ := json.Marshal(map[string]any{
			"engine": "rabbitmq", "host": b.rmq["RABBITMQ_HOST"], "port": b.rmq["RABBITMQ_AMQPS_PORT"],
			"management_port": b.rmq["RABBITMQ_MGMT_PORT"], "vhost": "/", "username": user, "password": pw, "masterarn": b.rmqMaster,
		})
		return []string{"RABBITMQ_CA_BUNDLE=" + b.rmq["RABBITMQ_CA_FILE"]}, string(doc), nil
	},
	// One single account, on the test bed's Samba AD DC (BENCH_DIRECTORY=ldap:
	// its OpenLDAP): the own password change, and a Kerberos ticket in
	// setSecret's login and in testSecret.
	"directory": func(ctx context.Context, b *bed) ([]string, string, error) {
		if os.Getenv("BENCH_DIRECTORY") == "ldap" {
			return b.slapdAccount(ctx)
		}
		return b.sambaAccount(ctx)
	},
	"mysql": func(ctx context.Context, b *bed) ([]string, string, error) {
		user, pw := "bench_"+localrun.NewToken()[:8], randomPassword()
		if err := b.mysqlExec(ctx, "CREATE USER ?@'%' IDENTIFIED BY ?", user, pw); err != nil {
			return nil, "", err
		}
		return []string{"DB_CA_BUNDLE=" + b.db["MYSQL_CA_FILE"]}, b.dbSecret("mariadb", "MYSQL", user, pw), nil
	},
}

// readEnv reads an env file of the test bed ("export K=V" lines).
func readEnv(name string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(".testbed", name))
	if err != nil {
		return nil, fmt.Errorf("test bed settings (run scripts/%s.sh up): %w", strings.TrimSuffix(name, ".env"), err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			m[k] = strings.Trim(v, `'"`)
		}
	}
	return m, sc.Err()
}

// directoryAdmin binds to a test bed directory over LDAPS as its
// administrator, verifying it with the test CA.
func directoryAdmin(addr, host, caFile, dn, password string) (*ldap.Conn, error) {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, errors.New("no certificate in the directory's test CA file")
	}
	l, err := ldap.DialURL("ldaps://"+addr, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}))
	if err != nil {
		return nil, err
	}
	if err := l.Bind(dn, password); err != nil {
		l.Close()
		return nil, fmt.Errorf("bind as the directory's administrator: %w", err)
	}
	return l, nil
}

// directoryPassword meets Active Directory's complexity and OpenLDAP's
// quality check.
func directoryPassword() string { return "Aa1-" + randomPassword() }

// sambaAccount makes a user under the Samba DC's service-account OU.
func (b *bed) sambaAccount(context.Context) ([]string, string, error) {
	e, err := readEnv("samba.env")
	if err != nil {
		return nil, "", err
	}
	l, err := directoryAdmin(e["SAMBA_HOST"]+":"+e["SAMBA_LDAPS_PORT"], e["SAMBA_HOST"], e["SAMBA_CA_FILE"], e["SAMBA_ADMIN_DN"], e["SAMBA_ADMIN_PASSWORD"])
	if err != nil {
		return nil, "", err
	}
	defer l.Close()
	sam, pw := "bench"+localrun.NewToken()[:8], directoryPassword()
	dn := "CN=" + sam + "," + e["SAMBA_SERVICES_OU"]
	u := utf16.Encode([]rune(`"` + pw + `"`))
	quoted := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(quoted[2*i:], r)
	}
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	req.Attribute("sAMAccountName", []string{sam})
	req.Attribute("unicodePwd", []string{string(quoted)})
	req.Attribute("userAccountControl", []string{"512"})
	if err := l.Add(req); err != nil {
		return nil, "", fmt.Errorf("add %s: %w", dn, err)
	}
	return []string{
		"DIRECTORY_KIND=activedirectory", "DIRECTORY_URL=ldaps://" + e["SAMBA_HOST"] + ":" + e["SAMBA_LDAPS_PORT"],
		"DIRECTORY_ALLOWED_BASE_DNS=" + e["SAMBA_SERVICES_OU"], "DIRECTORY_KERBEROS_REALM=" + e["SAMBA_REALM"],
		"DIRECTORY_KERBEROS_KDCS=" + e["SAMBA_KDC"], "DIRECTORY_CA_BUNDLE=" + e["SAMBA_CA_FILE"],
	}, directorySecret(dn, pw), nil
}

// slapdAccount makes an account under slapd's ou=services.
func (b *bed) slapdAccount(context.Context) ([]string, string, error) {
	e, err := readEnv("slapd.env")
	if err != nil {
		return nil, "", err
	}
	l, err := directoryAdmin(e["SLAPD_HOST"]+":"+e["SLAPD_TLS_PORT"], e["SLAPD_HOST"], e["SLAPD_CA_FILE"], e["SLAPD_ADMIN_DN"], e["SLAPD_ADMIN_PASSWORD"])
	if err != nil {
		return nil, "", err
	}
	defer l.Close()
	uid, pw := "bench-"+localrun.NewToken()[:8], directoryPassword()
	ou := "ou=services," + e["SLAPD_BASE_DN"]
	dn := "uid=" + uid + "," + ou
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{uid})
	req.Attribute("cn", []string{uid})
	req.Attribute("sn", []string{uid})
	req.Attribute("userPassword", []string{pw})
	if err := l.Add(req); err != nil {
		return nil, "", fmt.Errorf("add %s: %w", dn, err)
	}
	return []string{
		"DIRECTORY_KIND=ldap", "DIRECTORY_URL=ldaps://" + e["SLAPD_HOST"] + ":" + e["SLAPD_TLS_PORT"],
		"DIRECTORY_ALLOWED_BASE_DNS=" + ou, "DIRECTORY_CA_BUNDLE=" + e["SLAPD_CA_FILE"],
	}, directorySecret(dn, pw), nil
}

func directorySecret(dn, pw string) string {
	doc, _ := json.Marshal(map[string]string{"username": dn, "password": pw})
	return string(doc)
}

// randomPassword is hex, so it needs no quoting in the CREATE ROLE above.
func randomPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func (b *bed) dbSecret(engine, prefix, user, pw string) string {
	doc, _ := json.Marshal(map[string]any{
		"engine": engine, "host": b.db[prefix+"_HOST"], "port": b.db[prefix+"_PORT"],
		"username": user, "password": pw,
	})
	return string(doc)
}

func (b *bed) needDB() error {
	if b.db != nil {
		return nil
	}
	f, err := os.Open(".testbed/db.env")
	if err != nil {
		return fmt.Errorf("database settings (run scripts/testbed.sh up): %w", err)
	}
	defer f.Close()
	b.db = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			b.db[k] = strings.Trim(v, `'"`)
		}
	}
	return sc.Err()
}

func (b *bed) tlsConfig(prefix string) (*tls.Config, error) {
	pemBytes, err := os.ReadFile(b.db[prefix+"_CA_FILE"])
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, errors.New("no certificate in the test CA file")
	}
	return &tls.Config{RootCAs: pool, ServerName: b.db[prefix+"_HOST"], MinVersion: tls.VersionTLS12}, nil
}

func (b *bed) pgExec(ctx context.Context, stmt string) error {
	if err := b.needDB(); err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return err
	}
	cfg.Host, cfg.Database = b.db["PG_HOST"], "postgres"
	fmt.Sscan(b.db["PG_PORT"], &cfg.Port)
	cfg.User, cfg.Password = b.db["PG_ADMIN_USER"], b.db["PG_ADMIN_PASSWORD"]
	if cfg.TLSConfig, err = b.tlsConfig("PG"); err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL as admin: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}

func (b *bed) mysqlExec(ctx context.Context, stmt string, args ...any) error {
	if err := b.needDB(); err != nil {
		return err
	}
	tlsCfg, err := b.tlsConfig("MYSQL")
	if err != nil {
		return err
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = b.db["MYSQL_ADMIN_USER"], b.db["MYSQL_ADMIN_PASSWORD"]
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(b.db["MYSQL_HOST"], b.db["MYSQL_PORT"])
	cfg.TLS = tlsCfg
	// CREATE USER cannot be a server-side prepared statement: let the
	// driver escape the values into the statement instead.
	cfg.InterpolateParams = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt, args...)
	return err
}

// needRabbitMQ reads .testbed/rabbitmq.env and, once, makes an
// administrator and its master secret.
func (b *bed) needRabbitMQ(ctx context.Context) error {
	if b.rmqMaster != "" {
		return nil
	}
	env, err := os.ReadFile(".testbed/rabbitmq.env")
	if err != nil {
		return fmt.Errorf("RabbitMQ settings (run scripts/rabbitmq.sh up): %w", err)
	}
	b.rmq = map[string]string{}
	for _, line := range strings.Split(string(env), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			b.rmq[k] = strings.Trim(v, `'"`)
		}
	}
	master, pw := "bench_master_"+localrun.NewToken()[:8], randomPassword()
	if err := b.rmqPutUser(ctx, master, pw, "administrator"); err != nil {
		return err
	}
	doc, _ := json.Marshal(map[string]string{"username": master, "password": pw, "host": b.rmq["RABBITMQ_HOST"], "management_port": b.rmq["RABBITMQ_MGMT_PORT"]})
	out, err := b.em.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("bench/rabbitmq-master/" + localrun.NewToken()[:8]), SecretString: aws.String(string(doc)),
	})
	if err != nil {
		return fmt.Errorf("store the bench's RabbitMQ master secret: %w", err)
	}
	b.rmqMaster = aws.ToString(out.ARN)
	return nil
}

// rmqPutUser makes a broker user with full permissions on vhost "/", as
// the bed's admin, through the management API; the password goes as its
// hash.
func (b *bed) rmqPutUser(ctx context.Context, user, password, tags string) error {
	hash, err := rabbitmq.PasswordHash(password)
	if err != nil {
		return err
	}
	roots, err := httpsclient.LoadRoots(b.rmq["RABBITMQ_CA_FILE"])
	if err != nil {
		return err
	}
	client := httpsclient.New(httpsclient.Transport(roots), 10*time.Second)
	for _, r := range []struct {
		path string
		body map[string]string
	}{
		{"/api/users/" + url.PathEscape(user), map[string]string{"password_hash": hash, "hashing_algorithm": rabbitmq.HashingAlgorithm, "tags": tags}},
		{"/api/permissions/%2F/" + url.PathEscape(user), map[string]string{"configure": ".*", "write": ".*", "read": ".*"}},
	} {
		body, _ := json.Marshal(r.body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, b.rmq["RABBITMQ_MGMT_URL"]+r.path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.SetBasicAuth(b.rmq["RABBITMQ_ADMIN_USER"], b.rmq["RABBITMQ_ADMIN_PASSWORD"])
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("PUT %s: %w", r.path, httpsclient.Cause(err))
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("PUT %s: %s", r.path, resp.Status)
		}
	}
	return nil
}

// makeCA stores a self-signed issuer CA in a secret, in the format tlscert's
// CA_SECRET_ID reads.
func (b *bed) makeCA(ctx context.Context) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "bench issuing CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	doc, _ := json.Marshal(map[string]string{
		"certificate": certPEM,
		"privateKey":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	})
	out, err := b.em.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("bench/tlscert-ca/" + localrun.NewToken()[:8]), SecretString: aws.String(string(doc)),
	})
	if err != nil {
		return "", fmt.Errorf("store the bench CA: %w", err)
	}
	return aws.ToString(out.ARN), nil
}

// needKeyProvider starts the test provider of API keys (test equipment
// that plays a SaaS, in this process, on a loopback port) and stores its
// admin token in a secret, once.
func (b *bed) needKeyProvider(ctx context.Context) error {
	if b.keys != nil {
		return nil
	}
	dir, err := os.MkdirTemp("", "bench-keyprovider-")
	if err != nil {
		return err
	}
	// Each sample keeps its current and previous key: room for many.
	p, err := keyprovider.Start(keyprovider.Options{MaxKeys: 10000, Dir: dir})
	if err != nil {
		return err
	}
	doc, _ := json.Marshal(map[string]string{"token": p.AdminToken})
	out, err := b.em.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("bench/provider-admin/" + localrun.NewToken()[:8]), SecretString: aws.String(string(doc)),
	})
	if err != nil {
		p.Close()
		return fmt.Errorf("store the bench provider's admin token: %w", err)
	}
	b.keys, b.keysTok = p, aws.ToString(out.ARN)
	return nil
}

// needRedis reads .testbed/redis.env, logs in as the bed's admin user and
// stores it as the master secret of the redis samples, once.
func (b *bed) needRedis(ctx context.Context) error {
	if b.redisAdmin != nil {
		return nil
	}
	env, err := readEnvFile(".testbed/redis.env")
	if err != nil {
		return fmt.Errorf("Redis settings (run scripts/redis.sh up): %w", err)
	}
	pemBytes, err := os.ReadFile(env["REDIS_CA_FILE"])
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return errors.New("no certificate in the Redis test CA file")
	}
	admin := goredis.NewClient(&goredis.Options{
		Addr:     net.JoinHostPort(env["REDIS_HOST"], env["REDIS_TLS_PORT"]),
		Username: env["REDIS_ADMIN_USER"], Password: env["REDIS_ADMIN_PASSWORD"],
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: env["REDIS_HOST"], MinVersion: tls.VersionTLS12},
		Protocol:  2, DisableIdentity: true,
	})
	if err := admin.Ping(ctx).Err(); err != nil {
		admin.Close()
		return fmt.Errorf("log in to Redis as %s: %w", env["REDIS_ADMIN_USER"], err)
	}
	doc, _ := json.Marshal(map[string]any{
		"host": env["REDIS_HOST"], "port": env["REDIS_TLS_PORT"],
		"username": env["REDIS_ADMIN_USER"], "password": env["REDIS_ADMIN_PASSWORD"],
	})
	out, err := b.em.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("bench/redis-admin/" + localrun.NewToken()[:8]), SecretString: aws.String(string(doc)),
	})
	if err != nil {
		admin.Close()
		return fmt.Errorf("store the bench Redis master secret: %w", err)
	}
	b.redis, b.redisAdmin, b.redisMaster = env, admin, aws.ToString(out.ARN)
	return nil
}

// readEnvFile reads the export lines of a .testbed/*.env file.
func readEnvFile(name string) (map[string]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			m[k] = strings.Trim(v, `'"`)
		}
	}
	return m, sc.Err()
}
