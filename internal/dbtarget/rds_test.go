package dbtarget_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/postgres"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

func createInstance(t *testing.T, api *rds.Client, engine string, port int32) (id, arn, host string) {
	t.Helper()
	id = "db-" + localrun.NewToken()[:8]
	out, err := api.CreateDBInstance(context.Background(), &rds.CreateDBInstanceInput{
		DBInstanceIdentifier: aws.String(id), DBInstanceClass: aws.String("db.t3.micro"),
		Engine: aws.String(engine), Port: aws.Int32(port), AllocatedStorage: aws.Int32(20),
		MasterUsername: aws.String("master"), MasterUserPassword: aws.String("master-password-1"),
	})
	var inst *rdstypes.DBInstance
	var exists *rdstypes.DBInstanceAlreadyExistsFault
	switch {
	case err == nil:
		inst = out.DBInstance
	case errors.As(err, &exists):
		// The id is this call's own: the SDK re-sent the call after the
		// answer to a first one that took effect was lost (the connection
		// closed under it, aws/aws-sdk-go-v2#2737). Read what it made.
		d, derr := api.DescribeDBInstances(context.Background(), &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
		if derr != nil || len(d.DBInstances) != 1 {
			t.Fatalf("create RDS instance: %v; describe it: %v", err, derr)
		}
		inst = &d.DBInstances[0]
	default:
		t.Fatalf("create RDS instance: %v", err)
	}
	t.Cleanup(func() {
		api.DeleteDBInstance(context.Background(), &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(id), SkipFinalSnapshot: aws.Bool(true)})
	})
	return id, aws.ToString(inst.DBInstanceArn), aws.ToString(inst.Endpoint.Address)
}

// locate resolves s through the engine.
func locate(t *testing.T, e account.Driver, s *dbsecret.Secret) (account.Location, error) {
	t.Helper()
	return e.Locate(context.Background(), account.LocateRequest{Account: account.Account{Value: s}})
}

func TestRDSDiscovery(t *testing.T) {
	cfg := testbed.AWSConfig(t)
	api := rds.NewFromConfig(cfg)
	sm := secretsmanager.NewFromConfig(cfg)
	// Discovery never connects: the PostgreSQL driver only names engines here.
	e := dbtarget.NewDriver(postgres.Driver{}, sm, api)
	ctx := context.Background()

	id, arn, host := createInstance(t, api, "postgres", 55432)
	loc, err := locate(t, e, &dbsecret.Secret{DBInstanceIdentifier: id, SSL: true})
	if err != nil {
		t.Fatal(err)
	}
	if ep := loc.Detail.(dbsecret.Endpoint); loc.Host != host || loc.Port != 55432 || ep.Engine != "postgres" || loc.Plaintext {
		t.Fatalf("instance %s resolved to %+v, want %s:55432 with TLS", id, loc, host)
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
	loc, err = locate(t, e, &dbsecret.Secret{DBClusterIdentifier: cid, SSL: true})
	if err != nil {
		t.Fatal(err)
	}
	if loc.Host != aws.ToString(cl.DBCluster.Endpoint) || loc.Port != 5433 {
		t.Fatalf("cluster resolved to %+v, want %s:5433", loc, aws.ToString(cl.DBCluster.Endpoint))
	}

	// An engine the function does not serve is refused.
	myID, _, _ := createInstance(t, api, "mysql", 3306)
	if _, err := locate(t, e, &dbsecret.Secret{DBInstanceIdentifier: myID}); err == nil || !strings.Contains(err.Error(), `RDS reports engine "mysql"`) {
		t.Fatalf("want an engine error, got %v", err)
	}
	if _, err := locate(t, e, &dbsecret.Secret{DBInstanceIdentifier: "no-such-db"}); err == nil || !strings.Contains(err.Error(), "describe RDS instance no-such-db") {
		t.Fatalf("want a describe error, got %v", err)
	}

	// An RDS-managed master secret: only credentials, tagged with its
	// instance, which is where it belongs.
	masterARN := managedSecret(t, sm, arn)
	ml := e.(account.MasterLocator)
	r, err := ml.LocateMaster(ctx, account.LocateMasterRequest{MasterARN: masterARN})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Found || r.Host != host || r.Port != 55432 {
		t.Fatalf("managed master located at %+v, want %s:55432", r, host)
	}
	// A master secret of credentials only, without the tag: nothing says
	// where it belongs (the layer then asks MASTER_ALLOWED_SERVERS).
	plain, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("plain-master-" + localrun.NewToken()), SecretString: aws.String(`{"username":"m","password":"managed-password-1"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sm.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: plain.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
	if r, err := ml.LocateMaster(ctx, account.LocateMasterRequest{MasterARN: aws.ToString(plain.ARN)}); err != nil || r.Found {
		t.Fatalf("an untagged master secret was located: %+v, %v", r, err)
	}
}

// TestRDSManagedMasterOfAnotherInstance: the layer refuses a managed master
// secret tagged with another instance than the user secret's, before any
// connection; one of the same instance passes that check (the login that
// follows fails only because moto's endpoints do not resolve).
func TestRDSManagedMasterOfAnotherInstance(t *testing.T) {
	cfg := testbed.AWSConfig(t)
	api := rds.NewFromConfig(cfg)
	sm := secretsmanager.NewFromConfig(cfg)
	id, arn, _ := createInstance(t, api, "postgres", 55432)
	_, otherARN, _ := createInstance(t, api, "postgres", 55432)
	h := dbtest.NewHarness(t, dbtarget.New(dbtarget.DefaultConfig(), postgres.Driver{}, sm, api))
	for _, c := range []struct {
		master, want string
	}{
		{managedSecret(t, sm, otherARN), "refusing to use it"},
		{managedSecret(t, sm, arn), "cannot reach"},
	} {
		user := testbed.CreateSecret(t, h.Em, `{"engine":"postgres","dbInstanceIdentifier":"`+id+`","username":"app","password":"app-password-1","masterarn":"`+c.master+`"}`)
		token := h.Open(user)
		if err := h.Step(nil, "createSecret", user, token); err != nil {
			t.Fatal(err)
		}
		err := h.Step(nil, "setSecret", user, token)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("master %s: want %q, got %v", c.master, c.want, err)
		}
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
