// Package rollback decides what rolling a secret back to an older version
// means for each kind of rotated secret, and refuses where it cannot be done
// safely. It only computes the value to store as the pending version of a
// new rotation (rotationctl then has the rotation function run setSecret,
// testSecret and finishSecret on it, so the target system follows):
//
//   - generic, databases, tlscert, iamkey: the old value as it was. A
//     database gets the old password back at setSecret (single user) or
//     finds it still set (alternating users, rolling back to the other
//     user). Refused: a database version of another server or user, an
//     alternating-users version that names the user AWSCURRENT uses (its
//     clients would be refused), a certificate that has expired, an access
//     key that IAM deleted or deactivated.
//   - datakey and jwtkeys: not a copy. Consumers may hold data encrypted, or
//     tokens signed, with the newer key, so the old key becomes the primary
//     key again and every key of AWSCURRENT stays in the new version as a
//     retired key: the keyring still decrypts, and the JWKS still verifies,
//     everything made with the newer key.
package rollback

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/go-jose/go-jose/v4"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/grace"
	"github.com/secrets-rotation/secrets-rotation/pkg/jwks"
	"github.com/secrets-rotation/secrets-rotation/pkg/keyring"
)

// Kind is the kind of secret, recognised by the shape of its value.
type Kind string

// The kinds.
const (
	Generic  Kind = "generic"
	Database Kind = "database"
	DataKey  Kind = "datakey"
	JWTKeys  Kind = "jwtkeys"
	TLSCert  Kind = "tlscert"
	IAMKey   Kind = "iamkey"
)

// Version is one version of the secret.
type Version struct {
	ID    string
	Value string
}

// Request is a rollback to ask for.
type Request struct {
	Secret  string // name or ARN, for messages
	Current Version
	Target  Version
	Now     time.Time
}

// Plan is what to store as the pending version.
type Plan struct {
	Kind  Kind
	Value string
	// Notes say what the rollback will do to the target and its clients.
	Notes []string
}

// Refusal is a rollback that cannot be done safely: Reason says why, and
// Instead what to do.
type Refusal struct {
	Reason  string
	Instead string
}

func (r *Refusal) Error() string {
	if r.Instead == "" {
		return r.Reason + "; nothing changed"
	}
	return r.Reason + "; nothing changed. Instead: " + r.Instead
}

// IAMAPI is the IAM call that checks an old access key.
type IAMAPI interface {
	ListAccessKeys(context.Context, *iam.ListAccessKeysInput, ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
}

// Make returns the plan of req, or a *Refusal. iamAPI is used for access
// keys only and may be nil otherwise.
func Make(ctx context.Context, req Request, iamAPI IAMAPI) (Plan, error) {
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	kc, kt := KindOf(req.Current.Value), KindOf(req.Target.Value)
	if kc != kt {
		return Plan{}, &Refusal{
			Reason:  fmt.Sprintf("version %s holds a %s value but AWSCURRENT holds a %s value: the rotation function would refuse it", req.Target.ID, kt, kc),
			Instead: "name a version of the same kind with -to",
		}
	}
	switch kc {
	case Database:
		return database(req)
	case DataKey:
		return dataKey(req)
	case JWTKeys:
		return jwtKeys(req)
	case TLSCert:
		return tlsCert(req)
	case IAMKey:
		return iamKey(ctx, req, iamAPI)
	}
	return Plan{Kind: Generic, Value: req.Target.Value, Notes: []string{"the old value becomes AWSCURRENT again; the function's testSecret checks it first (VERIFY_URL when set)"}}, nil
}

// KindOf recognises the kind of a value by its shape.
func KindOf(value string) Kind {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(value), &obj) != nil || obj == nil {
		return Generic
	}
	if d, err := keyring.ParseDocument(value); err == nil && !d.Empty() {
		return DataKey
	}
	if d, err := jwks.ParseDocument(value); err == nil && !d.Empty() {
		return JWTKeys
	}
	if _, ok := obj["certificate"]; ok {
		if _, ok := obj["privateKey"]; ok {
			return TLSCert
		}
	}
	if _, ok := obj["userName"]; ok {
		if _, ok := obj["accessKeyId"]; ok {
			return IAMKey
		}
	}
	if s, err := dbsecret.Parse(value, dbsecret.Defaults{}); err == nil && (s.Host != "" || s.Engine != "" || s.DBInstanceIdentifier != "" || s.DBClusterIdentifier != "") {
		return Database
	}
	return Generic
}

func database(req Request) (Plan, error) {
	cur, err := dbsecret.Parse(req.Current.Value, dbsecret.Defaults{})
	if err != nil {
		return Plan{}, fmt.Errorf("AWSCURRENT: %w", err)
	}
	old, err := dbsecret.Parse(req.Target.Value, dbsecret.Defaults{})
	if err != nil {
		return Plan{}, fmt.Errorf("version %s: %w", req.Target.ID, err)
	}
	if old.Host != cur.Host || old.Port != cur.Port || old.DBInstanceIdentifier != cur.DBInstanceIdentifier ||
		old.DBClusterIdentifier != cur.DBClusterIdentifier || old.MasterARN != cur.MasterARN || old.Engine != cur.Engine {
		return Plan{}, &Refusal{
			Reason:  fmt.Sprintf("version %s names another server or master secret than AWSCURRENT: the function refuses to set a password there", req.Target.ID),
			Instead: "name a version of the same server with -to",
		}
	}
	if cur.Strategy() == dbsecret.SingleUser {
		if old.Username != cur.Username {
			return Plan{}, &Refusal{
				Reason:  fmt.Sprintf("version %s names user %s, AWSCURRENT user %s: a single-user secret changes one user only", req.Target.ID, old.Username, cur.Username),
				Instead: "name a version of user " + cur.Username + " with -to",
			}
		}
		return Plan{Kind: Database, Value: req.Target.Value, Notes: []string{
			fmt.Sprintf("single user: setSecret sets the old password on %s; until clients read the new AWSCURRENT, a client holding the current password is refused once (pkg/dbcreds retries with AWSCURRENT and AWSPENDING)", cur.Username),
		}}, nil
	}
	if old.Username == cur.Username {
		return Plan{}, &Refusal{
			Reason:  fmt.Sprintf("version %s names %s, the user that AWSCURRENT uses: setting its old password would refuse the logins of every client holding AWSCURRENT", req.Target.ID, cur.Username),
			Instead: fmt.Sprintf("roll back to AWSPREVIOUS, which names the other user (%s), whose password has not changed since; or rotate", cur.OtherUser()),
		}
	}
	return Plan{Kind: Database, Value: req.Target.Value, Notes: []string{
		fmt.Sprintf("alternating users: %s still has the password of version %s, so setSecret changes nothing; clients move to %s at finishSecret and %s keeps working until the next rotation", old.Username, req.Target.ID, old.Username, cur.Username),
	}}, nil
}

func dataKey(req Request) (Plan, error) {
	cur, err := keyring.ParseDocument(req.Current.Value)
	if err != nil {
		return Plan{}, fmt.Errorf("AWSCURRENT: %w", err)
	}
	old, err := keyring.ParseDocument(req.Target.Value)
	if err != nil {
		return Plan{}, fmt.Errorf("version %s: %w", req.Target.ID, err)
	}
	if old.KID == cur.KID {
		return Plan{}, &Refusal{Reason: fmt.Sprintf("version %s holds the key of AWSCURRENT (%s): there is nothing to roll back", req.Target.ID, cur.KID)}
	}
	now := req.Now.UTC()
	next := keyring.Document{Key: old.Key}
	next.Retired = time.Time{}
	// Every key of AWSCURRENT stays: data encrypted under the newer key
	// must stay readable. Older keys come from the old version only when
	// AWSCURRENT no longer carries them.
	seen := map[string]bool{old.KID: true}
	add := func(k keyring.Key, retired time.Time) {
		if seen[k.KID] || len(next.Previous) >= grace.MaxRetired {
			return
		}
		seen[k.KID] = true
		if k.Retired.IsZero() {
			k.Retired = retired
		}
		next.Previous = append(next.Previous, k)
	}
	for _, k := range cur.Keys() {
		add(k, now)
	}
	b, err := json.Marshal(next)
	if err != nil {
		return Plan{}, fmt.Errorf("encode data-key document: %w", err)
	}
	return Plan{Kind: DataKey, Value: string(b), Notes: []string{
		fmt.Sprintf("key %s becomes the key that encrypts again; %s and the keys AWSCURRENT carries stay in the keyring for decryption (retired now, kept for the function's grace period)", old.KID, cur.KID),
	}}, nil
}

func jwtKeys(req Request) (Plan, error) {
	cur, err := jwks.ParseDocument(req.Current.Value)
	if err != nil {
		return Plan{}, fmt.Errorf("AWSCURRENT: %w", err)
	}
	old, err := jwks.ParseDocument(req.Target.Value)
	if err != nil {
		return Plan{}, fmt.Errorf("version %s: %w", req.Target.ID, err)
	}
	if old.KID == cur.KID {
		return Plan{}, &Refusal{Reason: fmt.Sprintf("version %s holds the key of AWSCURRENT (%s): there is nothing to roll back", req.Target.ID, cur.KID)}
	}
	now := req.Now.UTC().Truncate(time.Second)
	next := jwks.Document{KID: old.KID, Alg: old.Alg, Created: old.Created, PrivateKey: old.PrivateKey}
	next.JWKS.Keys = []jose.JSONWebKey{old.PrivateKey.Public()}
	seen := map[string]bool{old.KID: true}
	retire := func(info jwks.KeyInfo) {
		if seen[info.KID] || len(next.Previous) >= grace.MaxRetired {
			return
		}
		k := cur.JWKS.Key(info.KID)
		if len(k) == 0 {
			return
		}
		seen[info.KID] = true
		next.JWKS.Keys = append(next.JWKS.Keys, k[0])
		next.Previous = append(next.Previous, info)
	}
	// Tokens signed with the newer key must keep verifying: it and every
	// key AWSCURRENT publishes stay in the JWKS.
	retire(jwks.KeyInfo{KID: cur.KID, Alg: cur.Alg, Created: cur.Created, Retired: now})
	for _, p := range cur.Previous {
		retire(p)
	}
	b, err := json.Marshal(next)
	if err != nil {
		return Plan{}, fmt.Errorf("encode JWT key document: %w", err)
	}
	if _, err := jwks.ParseDocument(string(b)); err != nil {
		return Plan{}, fmt.Errorf("rolled-back document: %w", err)
	}
	return Plan{Kind: JWTKeys, Value: string(b), Notes: []string{
		fmt.Sprintf("key %s signs again; %s and the keys AWSCURRENT publishes stay in the JWKS, so tokens signed with them still verify", old.KID, cur.KID),
	}}, nil
}

func tlsCert(req Request) (Plan, error) {
	var s struct {
		Certificate string `json:"certificate"`
	}
	if err := json.Unmarshal([]byte(req.Target.Value), &s); err != nil {
		return Plan{}, fmt.Errorf("version %s is not a certificate secret", req.Target.ID)
	}
	block, _ := pem.Decode([]byte(s.Certificate))
	if block == nil {
		return Plan{}, &Refusal{Reason: fmt.Sprintf("version %s holds no PEM certificate", req.Target.ID), Instead: "rotate to issue a new certificate"}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return Plan{}, &Refusal{Reason: fmt.Sprintf("the certificate of version %s does not parse", req.Target.ID), Instead: "rotate to issue a new certificate"}
	}
	if !req.Now.Before(cert.NotAfter) {
		return Plan{}, &Refusal{
			Reason:  fmt.Sprintf("the certificate of version %s (serial %x) expired on %s: clients would reject it", req.Target.ID, cert.SerialNumber, cert.NotAfter.UTC().Format(time.RFC3339)),
			Instead: "rotate (`rotationctl rotate`) to issue a new certificate",
		}
	}
	return Plan{Kind: TLSCert, Value: req.Target.Value, Notes: []string{
		fmt.Sprintf("the certificate of version %s (serial %x, valid until %s) becomes current again; testSecret requires MIN_VALIDITY_DAYS left and a chain to the issuer's current root, and setSecret re-imports it into ACM when ACM_CERTIFICATE_ARN is set",
			req.Target.ID, cert.SerialNumber, cert.NotAfter.UTC().Format(time.RFC3339)),
	}}, nil
}

func iamKey(ctx context.Context, req Request, api IAMAPI) (Plan, error) {
	var cur, old struct {
		UserName    string `json:"userName"`
		AccessKeyID string `json:"accessKeyId"`
	}
	if json.Unmarshal([]byte(req.Current.Value), &cur) != nil || json.Unmarshal([]byte(req.Target.Value), &old) != nil {
		return Plan{}, errors.New("access key secret is not a JSON object")
	}
	if old.UserName != cur.UserName {
		return Plan{}, &Refusal{Reason: fmt.Sprintf("version %s names IAM user %s, AWSCURRENT %s: the function refuses it", req.Target.ID, old.UserName, cur.UserName)}
	}
	if old.AccessKeyID == cur.AccessKeyID {
		return Plan{}, &Refusal{Reason: fmt.Sprintf("version %s holds the access key of AWSCURRENT (%s): there is nothing to roll back", req.Target.ID, cur.AccessKeyID)}
	}
	if api == nil {
		return Plan{}, errors.New("no IAM client to check the old access key")
	}
	out, err := api.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(old.UserName)})
	if err != nil {
		return Plan{}, &Refusal{
			Reason:  fmt.Sprintf("cannot check that access key %s of IAM user %s still exists: %v", old.AccessKeyID, old.UserName, err),
			Instead: "run the rollback with iam:ListAccessKeys on the user",
		}
	}
	for _, k := range out.AccessKeyMetadata {
		if aws.ToString(k.AccessKeyId) != old.AccessKeyID {
			continue
		}
		if k.Status != iamtypes.StatusTypeActive {
			return Plan{}, &Refusal{
				Reason: fmt.Sprintf("access key %s of IAM user %s is %s (DEACTIVATE_PREVIOUS_KEY, or by hand): the function refuses an inactive key", old.AccessKeyID, old.UserName, k.Status),
				Instead: fmt.Sprintf("if the key is not compromised, reactivate it (aws iam update-access-key --user-name %s --access-key-id %s --status Active) and roll back again; otherwise rotate to get a new key",
					old.UserName, old.AccessKeyID),
			}
		}
		return Plan{Kind: IAMKey, Value: req.Target.Value, Notes: []string{
			fmt.Sprintf("access key %s becomes current again; %s stays active until the next rotation (or is deactivated at finishSecret with DEACTIVATE_PREVIOUS_KEY)", old.AccessKeyID, cur.AccessKeyID),
		}}, nil
	}
	return Plan{}, &Refusal{
		Reason:  fmt.Sprintf("access key %s of IAM user %s no longer exists (createSecret deletes the key of AWSPREVIOUS to make room for a new one, IAM allows two): a deleted key cannot come back", old.AccessKeyID, old.UserName),
		Instead: "rotate (`rotationctl rotate`) to get a new key",
	}
}
