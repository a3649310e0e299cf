package provider_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func getVersion(arn, id string) *secretsmanager.GetSecretValueInput {
	return &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(id)}
}

func putPending(arn, token, value string) *secretsmanager.PutSecretValueInput {
	return &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(token),
		SecretString: aws.String(value), VersionStages: []string{"AWSPENDING"}}
}

func readJSON(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
