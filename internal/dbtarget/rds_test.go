package dbtarget

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// pgNames is the engine-name part of a Driver; discovery never connects.
type pgNames struct{ Driver }

func (pgNames) Name() string                { return "postgres" }
func (pgNames) Serves(e string) bool        { return Served(e, "postgres") }
func (pgNames) Defaults() dbsecret.Defaults { return dbsecret.Defaults{Port: 5432, DBName: "postgres"} }
func (pgNames) MaxUserLen() int             { return 63 }

func createInstance(t *testing.T, api *rds.Client, engine string, port int32) (id, arn, host string) {
	t.Helper()
	id = "db-" + localrun.NewToken()[:8]
	out, err := api.CreateDBInstance(context.Background(), &rds.CreateDBInstanceInput{
		DBInstanceIdentifier: aws.String(id), DBInstanceClass: aws.String("db.t3.micro"),
		Engine: aws.String(engine), Port: aws.Int32(port), AllocatedStorage: aws.Int32(20),
		MasterUsername: aws.String("master"), MasterUserPassword: aws.String("master-password-1"),
	})
	if err != nil {
		t.Fatalf("create RDS instance: %v", err)
	}
	t.Cleanup(func() {
		api.DeleteDBInstance(context.Background(), &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(id), SkipFinalSnapshot: aws.Bool(true)})
	})
	return id, aws.ToString(out.DBInstance.DBInstanceArn), aws.ToString(out.DBInstance.Endpoint.Address)
}

func TestRDSDiscovery(t *testing.T) {
	cfg := testbed.AWSConfig(t)
	api := rds.NewFromConfig(cfg)
	sm := secretsmanager.NewFromConfig(cfg)
	tgt := New(DefaultConfig(), pgNames{}, sm, api)
	ctx := context.Background()

	id, arn, host := createInstance(t, api, "postgres", 55432)
	ep, err := tgt.endpoint(ctx, &dbsecret.Secret{DBInstanceIdentifier: id, SSL: true})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host != host || ep.Port != 55432 || ep.Engine != "postgres" || ep.TLS == nil || ep.TLS.ServerName != host {
		t.Fatalf("instance %s resolved to %+v, want %s:55432 with TLS", id, ep, host)
	}

	cid := "cl-" + localrun.NewToken()[:8]
	cl, err := api.CreateDBCluster(ctx, &rds.CreateDBClusterInput{
		DBClusterIdentifier: aws.String(cid), Engine: aws.String("aurora-postgresql"), Port: aws.Int32(5433),
		MasterUsername: aws.String("master"), MasterUserPassword: aws.String("master-password-1"),
	})
	if err != nil {
		t.Fatalf("create RDS cluster: %v", err)
	}
	t.Cleanup(func() {
		api.DeleteDBCluster(context.Background(), &rds.DeleteDBClusterInput{DBClusterIdentifier: aws.String(cid), SkipFinalSnapshot: aws.Bool(true)})
	})
	ep, err = tgt.endpoint(ctx, &dbsecret.Secret{DBClusterIdentifier: cid, SSL: true})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host != aws.ToString(cl.DBCluster.Endpoint) || ep.Port != 5433 {
		t.Fatalf("cluster resolved to %+v, want %s:5433", ep, aws.ToString(cl.DBCluster.Endpoint))
	}

	// An engine the function does not serve is refused.
	myID, _, _ := createInstance(t, api, "mysql", 3306)
	if _, err := tgt.endpoint(ctx, &dbsecret.Secret{DBInstanceIdentifier: myID}); err == nil || !strings.Contains(err.Error(), `RDS reports engine "mysql"`) {
		t.Fatalf("want an engine error, got %v", err)
	}
	if _, err := tgt.endpoint(ctx, &dbsecret.Secret{DBInstanceIdentifier: "no-such-db"}); err == nil || !strings.Contains(err.Error(), "describe RDS instance no-such-db") {
		t.Fatalf("want a describe error, got %v", err)
	}

	// An RDS-managed master secret: only credentials, tagged with its
	// instance. It connects to that instance, which must be the user's.
	masterARN := managedSecret(t, sm, arn)
	user := &dbsecret.Secret{Username: "app", DBInstanceIdentifier: id, MasterARN: masterARN, SSL: true, Port: 5432}
	m, mep, err := tgt.master(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if mep.Host != host || mep.Port != 55432 || m.Username != "rdsadmin" || mep.TLS == nil || mep.TLS.ServerName != host {
		t.Fatalf("managed master resolved to %s@%s:%d (TLS %v)", m.Username, mep.Host, mep.Port, mep.TLS != nil)
	}
	// Master credentials go over verified TLS even when the user secret
	// asks for plaintext.
	user.SSL = false
	if _, mep, err = tgt.master(ctx, user); err != nil || mep.TLS == nil {
		t.Fatalf("master for a user secret with ssl false: TLS %v, %v", mep.TLS != nil, err)
	}
	user.SSL = true
	otherID, otherARN, _ := createInstance(t, api, "postgres", 55432)
	_ = otherID
	user.MasterARN = managedSecret(t, sm, otherARN)
	if _, _, err := tgt.master(ctx, user); err == nil || !strings.Contains(err.Error(), "refusing to use it") {
		t.Fatalf("a master secret of another instance was accepted: %v", err)
	}
}

func managedSecret(t *testing.T, sm *secretsmanager.Client, instanceARN string) string {
	t.Helper()
	out, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		// RDS names these "rds!db-<id>"; LocalStack refuses "!" in a name,
		// and nothing here depends on the name, only on the tag.
		Name:         aws.String("rds-db-" + localrun.NewToken()),
		SecretString: aws.String(`{"username":"rdsadmin","password":"managed-password-1"}`),
		Tags:         []smtypes.Tag{{Key: aws.String("aws:rds:primaryDBInstanceArn"), Value: aws.String(instanceARN)}},
	})
	if err != nil {
		t.Fatalf("create managed master secret: %v", err)
	}
	t.Cleanup(func() {
		sm.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: out.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
	return aws.ToString(out.ARN)
}
