package datakey_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/datakey"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/pkg/keyring"
)

const primaryRegion, replicaRegion = "us-east-1", "eu-west-1"

// TestKeyringInAReplicaRegion rotates a replicated data-key secret in its
// primary region with the real datakey target (keys stored wrapped only)
// and reads it in the replica region: the keyring there decrypts what the
// primary encrypted, and refuses the same document copied into another
// secret (the binding to the secret holds across regions). The KMS key is
// either a single-Region key, reached in its own region, or a multi-Region
// key replicated to the replica region, whose replica the keyring uses.
//
// Secrets Manager is moto's: LocalStack 4.14 answers GetSecretValue on a
// replica with InternalError ('ReplicaSecret' object has no attribute
// 'kms_key_id'). KMS is the bed's emulator's.
func TestKeyringInAReplicaRegion(t *testing.T) {
	t.Run("single-Region key", func(t *testing.T) { replicaScenario(t, false) })
	t.Run("multi-Region key", func(t *testing.T) {
		if os.Getenv("EMULATOR") == "moto" {
			// moto 5.2.1 cannot decrypt with a multi-Region key even in its
			// own region (AccessDeniedException): the LocalStack bed, which
			// behaves as AWS does, runs this case.
			t.Log("multi-Region KMS keys need LocalStack's KMS; EMULATOR=moto covers the single-Region case only")
			return
		}
		replicaScenario(t, true)
	})
}

func replicaScenario(t *testing.T, multiRegion bool) {
	ctx := context.Background()
	url := testbed.MotoURL(t)
	in := func(region string) aws.Config {
		c := testbed.AWSConfig(t).Copy()
		c.Region, c.BaseEndpoint = region, aws.String(url)
		return c
	}
	primary, replica := in(primaryRegion), in(replicaRegion)
	kmsIn := func(region string) *kms.Client {
		return kms.NewFromConfig(testbed.AWSConfig(t), func(o *kms.Options) { o.Region = region })
	}
	kp := kmsIn(primaryRegion)
	key, err := kp.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(multiRegion), Description: aws.String("replica test")})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	// A single-Region key is reached in its own region; a multi-Region
	// key through its replica in the reader's region.
	kr := kp
	if multiRegion {
		if _, err := kp.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(keyARN), ReplicaRegion: aws.String(replicaRegion)}); err != nil {
			t.Fatal(err)
		}
		kr = kmsIn(replicaRegion)
	}

	em := localrun.NewEmulator(primary)
	smReplica := secretsmanager.NewFromConfig(replica)
	newSecret := func(suffix, value string) string {
		out, err := em.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String("replica-test/" + suffix + "-" + localrun.NewToken()[:8]), SecretString: aws.String(value),
			AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String(replicaRegion)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			em.SM.RemoveRegionsFromReplication(ctx, &secretsmanager.RemoveRegionsFromReplicationInput{SecretId: out.ARN, RemoveReplicaRegions: []string{replicaRegion}})
			em.SM.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: out.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})
		})
		return aws.ToString(out.ARN)
	}
	arn := newSecret("datakey", "{}")
	target := datakey.New(datakey.Config{KMSKeyID: keyARN, RotationDays: 365, Storage: datakey.StorageWrapped, Grace: 365 * 24 * time.Hour}, kp)
	eng := rotation.New(em.SM, target, rotation.Options{TargetType: "datakey", Logger: slog.New(slog.DiscardHandler)})
	for i := range 2 {
		if _, err := em.Rotate(ctx, arn, localrun.InvokerFunc(eng.Handle), localrun.Options{Attempts: 1}); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
	}

	atPrimary, err := keyring.New(keyring.Options{SecretID: arn, Secrets: em.SM, KMS: kp})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := atPrimary.Encrypt(ctx, []byte("written in "+primaryRegion), []byte("row-1"))
	if err != nil {
		t.Fatal(err)
	}
	replicaARN := strings.Replace(arn, ":"+primaryRegion+":", ":"+replicaRegion+":", 1)
	atReplica, err := keyring.New(keyring.Options{SecretID: replicaARN, Secrets: smReplica, KMS: kr})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := atReplica.Decrypt(ctx, ct, []byte("row-1"))
	if err != nil || string(pt) != "written in "+primaryRegion {
		t.Fatalf("decrypt in %s: %v", replicaRegion, err)
	}
	if multiRegion {
		// What the keyring avoids: KMS in the replica region does not take
		// the primary region's key ARN.
		wrapped, err := keyring.ParseDocument(mustValue(t, ctx, em.SM, arn))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kr.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wrapped.WrappedKey, KeyId: aws.String(keyARN), EncryptionContext: wrapped.EncryptionContext}); err == nil {
			t.Errorf("KMS in %s unwrapped with the %s key ARN: the region rewrite is not needed after all", replicaRegion, primaryRegion)
		}
	}
	kidP, _ := atPrimary.CurrentKID(ctx)
	kidR, err := atReplica.CurrentKID(ctx)
	if err != nil || kidR != kidP {
		t.Errorf("current key in the replica %s (%v), in the primary %s", kidR, err, kidP)
	}
	kids, _ := atReplica.KIDs(ctx)
	if len(kids) != 2 {
		t.Errorf("the replica's keyring holds %v, want the keys of both rotations", kids)
	}

	// The document of this secret, copied into another one: its keys are
	// bound to the first secret, and the keyring of the other refuses them.
	other := newSecret("copy", mustValue(t, ctx, em.SM, arn))
	copied, err := keyring.New(keyring.Options{SecretID: strings.Replace(other, ":"+primaryRegion+":", ":"+replicaRegion+":", 1), Secrets: smReplica, KMS: kr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := copied.Decrypt(ctx, ct, []byte("row-1")); err == nil || !strings.Contains(err.Error(), "is bound to the secret") {
		t.Errorf("a copied document was used: %v", err)
	}
}

func mustValue(t *testing.T, ctx context.Context, sm *secretsmanager.Client, arn string) string {
	t.Helper()
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String("AWSCURRENT")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.SecretString)
}
