package redis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis/redistest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestBadInput: the bad input of issue 11 and of the secret format. Each
// is refused with an error that names the secret, the field or account and
// the reason; every version keeps its value and labels, and the user's ACL
// (its passwords included) is as it was: its working password still logs
// in, and no user is ever left with only a password that was not tested.
func TestBadInput(t *testing.T) {
	s := redistest.Settings(t)
	type input struct {
		fields   map[string]any // the secret's fields beyond user, password and masterarn
		master   map[string]any // the master secret's changes
		user, pw string         // the secret's user, when not the prepared one
	}
	unreachable := testbed.FreeLoopbackPort(t)
	for _, c := range []struct {
		name string
		// prepare returns the secret's input; user is a prepared
		// application user whose password is pw.
		prepare func(t *testing.T, user, pw string) input
		config  func(c *redis.Config)
		// step is the step that refuses; field and reason are in its error.
		step, field, reason string
	}{{
		name: "unknown account, single user",
		prepare: func(*testing.T, string, string) input {
			return input{user: redistest.Name("ghost_"), pw: redistest.Password()}
		},
		step: "setSecret", field: "cannot log in as ghost_", reason: "WRONGPASS",
	}, {
		name: "unknown account, alternating users",
		prepare: func(*testing.T, string, string) input {
			return input{user: redistest.Name("ghost_"), pw: redistest.Password(), fields: map[string]any{"strategy": "alternating-users"}}
		},
		step: "setSecret", field: "AWSCURRENT does not log in as \"ghost_", reason: "WRONGPASS",
	}, {
		name: "unreachable server",
		prepare: func(*testing.T, string, string) input {
			return input{fields: map[string]any{"port": unreachable}, master: map[string]any{"port": unreachable}}
		},
		step: "setSecret", field: fmt.Sprintf("cannot reach 127.0.0.1:%d (as ", unreachable), reason: "connection refused",
	}, {
		name:    "server certificate that does not verify",
		prepare: func(*testing.T, string, string) input { return input{} },
		config:  func(c *redis.Config) { c.CABundle = "" },
		step:    "setSecret", field: "cannot reach 127.0.0.1:", reason: "certificate signed by unknown authority",
	}, {
		name: "admin user without the right to change passwords",
		prepare: func(t *testing.T, _, _ string) input {
			weak, wpw := redistest.Name("weakadmin_"), redistest.Password()
			s.CreateUser(t, weak, wpw, "on", "~*", "&*", "+@all", "-@admin")
			return input{master: map[string]any{"username": weak, "password": wpw}}
		},
		step: "setSecret", field: "as weakadmin_", reason: "NOPERM",
	}, {
		name: "user without passwords (nopass)",
		prepare: func(t *testing.T, user, pw string) input {
			if err := s.Client(t).Do(context.Background(), "ACL", "SETUSER", user, "nopass").Err(); err != nil {
				t.Fatal(err)
			}
			return input{}
		},
		step: "setSecret", field: "has the \"nopass\" flag", reason: "refusing to give it passwords",
	}, {
		name: "plaintext at a server the configuration does not list",
		prepare: func(*testing.T, string, string) input {
			plain := map[string]any{"port": s.Port, "ssl": false}
			return input{fields: plain, master: plain}
		},
		step: "setSecret", field: `"ssl": false`, reason: "which REDIS_PLAINTEXT_SERVERS does not list",
	}, {
		name:    "no master secret",
		prepare: func(*testing.T, string, string) input { return input{fields: map[string]any{"masterarn": nil}} },
		step:    "createSecret", field: `"masterarn" is missing`, reason: "needs an admin user",
	}, {
		name: "ElastiCache endpoint",
		prepare: func(*testing.T, string, string) input {
			return input{fields: map[string]any{"host": "clustercfg.app.abc123.use1.cache.amazonaws.com"}}
		},
		step: "createSecret", field: `"host"`, reason: "ModifyUser",
	}, {
		name: "MemoryDB endpoint",
		prepare: func(*testing.T, string, string) input {
			return input{fields: map[string]any{"host": "clustercfg.app.abc123.memorydb.us-east-1.amazonaws.com"}}
		},
		step: "createSecret", field: `"host"`, reason: "ModifyUser",
	}, {
		name: "ElastiCache user secret",
		prepare: func(*testing.T, string, string) input {
			return input{fields: map[string]any{"user_arn": "arn:aws:elasticache:us-east-1:123456789012:user:app"}}
		},
		step: "createSecret", field: `"user_arn"`, reason: "ModifyUser",
	}, {
		name:    "unknown strategy",
		prepare: func(*testing.T, string, string) input { return input{fields: map[string]any{"strategy": "rolling"}} },
		step:    "createSecret", field: `"strategy"`, reason: `want "single-user"`,
	}, {
		name:    "another engine",
		prepare: func(*testing.T, string, string) input { return input{fields: map[string]any{"engine": "memcached"}} },
		step:    "createSecret", field: `"engine"`, reason: `serves "redis" and "valkey"`,
	}, {
		name:    "user name with a space",
		prepare: func(*testing.T, string, string) input { return input{user: "app user", pw: redistest.Password()} },
		step:    "createSecret", field: `"username"`, reason: "space",
	}, {
		name:    "port out of range",
		prepare: func(*testing.T, string, string) input { return input{fields: map[string]any{"port": 70000}} },
		step:    "createSecret", field: `"port"`, reason: "between 1 and 65535",
	}} {
		t.Run(c.name, func(t *testing.T) {
			user, pw := appUser(t, s, "bad_")
			in := c.prepare(t, user, pw)
			cfg := config(t)
			if c.config != nil {
				c.config(&cfg)
			}
			tgt, _ := newTarget(t, cfg, testbed.AWSConfig(t))
			h := dbtest.NewHarness(t, tgt)
			masterARN := masterSecret(t, h.Em, s, in.master)
			secretUser, secretPW := user, pw
			if in.user != "" {
				secretUser, secretPW = in.user, in.pw
			}
			extra := map[string]any{"masterarn": masterARN}
			for k, v := range in.fields {
				extra[k] = v
			}
			arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, fields(s, secretUser, secretPW, extra)))
			acl := aclState(t, s, user, user+redis.CloneSuffix, secretUser, secretUser+redis.CloneSuffix)
			before := dbtest.Snapshot(t, h, arn)
			token, err := rotateOnce(t, h, arn)
			refusal(t, err, arn, c.field, c.reason, pw, secretPW, s.AdminPassword)
			if !strings.HasPrefix(err.Error(), c.step+" ") {
				t.Fatalf("refused by %v, want %s", err, c.step)
			}
			dbtest.Unchanged(t, h, arn, token, before)
			if got := aclState(t, s, user, user+redis.CloneSuffix, secretUser, secretUser+redis.CloneSuffix); got != acl {
				t.Fatalf("the server's ACL users changed:\n%s\n%s", acl, got)
			}
			h.AssertNoSecretInLogs(pw, secretPW, s.AdminPassword)
			assertNoHashInLogs(t, h.Logs(), pw, secretPW, s.AdminPassword)
		})
	}
}
