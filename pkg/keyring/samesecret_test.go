package keyring_test

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/pkg/keyring"
)

func TestSameSecret(t *testing.T) {
	a := "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/key-AbCdEf"
	for b, want := range map[string]bool{
		a: true,
		"arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/key-AbCdEf":   true,  // its replica
		"arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/key-XyZuvw":   false, // same name, made separately
		"arn:aws:secretsmanager:us-east-1:444455556666:secret:app/key-AbCdEf":   false, // another account
		"arn:aws:secretsmanager:us-east-1:111122223333:secret:app/other-AbCdEf": false,
		"app/key": false,
	} {
		if got := keyring.SameSecret(a, b); got != want {
			t.Errorf("SameSecret(%s) = %v, want %v", b, got, want)
		}
	}
}
