package rabbitmq_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
)

// TestConfigErrors: every bad setting is refused naming the variable; the
// defaults leave out the characters an amqps:// URI and Amazon MQ refuse.
func TestConfigErrors(t *testing.T) {
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"timeout":         {map[string]string{"RABBITMQ_CONNECT_TIMEOUT": "soon"}, "RABBITMQ_CONNECT_TIMEOUT"},
		"negative":        {map[string]string{"RABBITMQ_CONNECT_TIMEOUT": "-1s"}, "RABBITMQ_CONNECT_TIMEOUT"},
		"CA bundle":       {map[string]string{"RABBITMQ_CA_BUNDLE": "/no/such/ca.pem"}, "RABBITMQ_CA_BUNDLE"},
		"allowed servers": {map[string]string{"MASTER_ALLOWED_SERVERS": "mq.example.com"}, "MASTER_ALLOWED_SERVERS"},
		"allowed users":   {map[string]string{"MASTER_ALLOWED_USERS": "*"}, "MASTER_ALLOWED_USERS"},
		"length":          {map[string]string{"PASSWORD_LENGTH": "4"}, "PASSWORD_LENGTH"},
	} {
		_, err := rabbitmq.ConfigFromEnv(func(k string) string { return c.env[k] })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s", name, err, c.want)
		}
	}
	cfg, err := rabbitmq.ConfigFromEnv(func(k string) string {
		return map[string]string{"MASTER_ALLOWED_SERVERS": "B-1.mq.eu-west-1.amazonaws.com:443", "RABBITMQ_CONNECT_TIMEOUT": "3s"}[k]
	})
	if err != nil || cfg.ConnectTimeout.String() != "3s" || cfg.MasterAllowedServers[0] != "b-1.mq.eu-west-1.amazonaws.com:443" {
		t.Fatalf("config %+v, %v", cfg, err)
	}
	if cfg.Password.ExcludeCharacters != rabbitmq.DefaultExcludeCharacters {
		t.Fatalf("default excluded characters %q", cfg.Password.ExcludeCharacters)
	}
	for range 20 {
		pw, err := cfg.Password.Generate()
		if err != nil || strings.ContainsAny(pw, ",:=@/%") {
			t.Fatalf("generated password with a character an amqps URI or Amazon MQ refuses (%v)", err)
		}
	}
}

// TestConfigErrorFailsEveryInvocation: the function with a bad setting
// starts, and each invocation fails with a ConfigError naming it.
func TestConfigErrorFailsEveryInvocation(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	env := map[string]string{"RABBITMQ_CONNECT_TIMEOUT": "forever", "METRICS_NAMESPACE": "off"}
	h := lambdafn.Handler(context.Background(), "rabbitmq", func(k string) string { return env[k] }, func(ctx context.Context, e lambdafn.Env) (rotation.Target, error) {
		cfg, err := rabbitmq.ConfigFromEnv(e.Getenv)
		if err != nil {
			return nil, err
		}
		return rabbitmq.New(cfg, rabbitmq.Driver{}, nil), nil
	})
	event, _ := json.Marshal(map[string]string{"Step": "createSecret", "SecretId": "arn:aws:secretsmanager:us-east-1:1:secret:x", "ClientRequestToken": "t"})
	err := h(context.Background(), event)
	var ce *lambdafn.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "RABBITMQ_CONNECT_TIMEOUT") {
		t.Fatalf("invocation error %v, want a ConfigError naming RABBITMQ_CONNECT_TIMEOUT", err)
	}
}

var _ account.Driver = rabbitmq.Driver{}
