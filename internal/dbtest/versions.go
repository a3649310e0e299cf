package dbtest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Version is one stored version of a secret.
type Version struct {
	Value  string
	Stages []string
}

// Snapshot reads every version of a secret, labelled or not: what the
// hostile-input and bad-input tests compare before and after a refusal.
func Snapshot(t testing.TB, h *Harness, arn string) map[string]Version {
	t.Helper()
	out := map[string]Version{}
	p := secretsmanager.NewListSecretVersionIdsPaginator(h.Em.SM, &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(arn), IncludeDeprecated: aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			id := aws.ToString(v.VersionId)
			val := ""
			if got, err := h.Em.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(id)}); err == nil {
				val = aws.ToString(got.SecretString)
			}
			stages := slices.Clone(v.VersionStages)
			slices.Sort(stages)
			out[id] = Version{Value: val, Stages: stages}
		}
	}
	return out
}

// Unchanged asserts that every version that existed before holds the same
// value and labels, and that the only new version is the rotation's own
// (token), labelled AWSPENDING and nothing else.
func Unchanged(t testing.TB, h *Harness, arn, token string, before map[string]Version) {
	t.Helper()
	after := Snapshot(t, h, arn)
	for id, b := range before {
		a, ok := after[id]
		if !ok {
			t.Fatalf("version %s is gone", id)
		}
		if a.Value != b.Value || !slices.Equal(a.Stages, b.Stages) {
			t.Fatalf("version %s changed: labels %v -> %v, value changed %v", id, b.Stages, a.Stages, a.Value != b.Value)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[id]; !ok && (id != token || !slices.Equal(after[id].Stages, []string{"AWSPENDING"})) {
			t.Fatalf("new version %s with labels %v", id, after[id].Stages)
		}
	}
}

// Refused asserts that err is a refusal that names the secret, the field
// and the reason, and shows none of the secrets.
func Refused(t testing.TB, err error, arn, field, reason string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("the rotation was not refused")
	}
	msg := err.Error()
	for _, want := range []string{arn, field, reason} {
		if !strings.Contains(msg, want) {
			t.Fatalf("refusal %q does not say %q", msg, want)
		}
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Fatal("the refusal shows a password")
		}
	}
}
