package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
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
	"mysql": func(ctx context.Context, b *bed) ([]string, string, error) {
		user, pw := "bench_"+localrun.NewToken()[:8], randomPassword()
		if err := b.mysqlExec(ctx, "CREATE USER ?@'%' IDENTIFIED BY ?", user, pw); err != nil {
			return nil, "", err
		}
		return []string{"DB_CA_BUNDLE=" + b.db["MYSQL_CA_FILE"]}, b.dbSecret("mariadb", "MYSQL", user, pw), nil
	},
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
