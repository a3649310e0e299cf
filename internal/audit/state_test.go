package audit

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func TestNextAndOverdue(t *testing.T) {
	last := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	on := aws.Bool(true)
	for _, c := range []struct {
		name     string
		m        Metadata
		now      time.Time
		next     time.Time
		known    bool
		overdue  bool
		schedule string
	}{
		{"days, no window: due +30d, late after the 24h window", Metadata{RotationEnabled: on, LastRotated: last, Rules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}},
			last.Add(31*24*time.Hour + time.Minute), last.Add(30 * 24 * time.Hour), true, true, "every 30 days"},
		{"within the window", Metadata{RotationEnabled: on, LastRotated: last, Rules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}},
			last.Add(30*24*time.Hour + 23*time.Hour), last.Add(30 * 24 * time.Hour), true, false, "every 30 days"},
		{"rate in hours with a 2h window", Metadata{RotationEnabled: on, LastRotated: last, Rules: &smtypes.RotationRulesType{ScheduleExpression: aws.String("rate(4 hours)"), Duration: aws.String("2h")}},
			last.Add(6*time.Hour + time.Minute), last.Add(4 * time.Hour), true, true, "rate(4 hours), window 2h"},
		{"NextRotationDate wins", Metadata{RotationEnabled: on, LastRotated: last, NextRotation: last.Add(time.Hour), Rules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}},
			last.Add(2 * time.Hour), last.Add(time.Hour), true, false, "every 30 days"},
		{"cron without a date: unknown", Metadata{RotationEnabled: on, LastRotated: last, Rules: &smtypes.RotationRulesType{ScheduleExpression: aws.String("cron(0 4 ? * SUN *)")}},
			last.Add(1000 * time.Hour), time.Time{}, false, false, "cron(0 4 ? * SUN *)"},
		{"off: never overdue", Metadata{RotationEnabled: aws.Bool(false), LastRotated: last, Rules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(1)}},
			last.Add(1000 * time.Hour), last.Add(24 * time.Hour), true, false, "every 1 days"},
	} {
		next, ok := c.m.Next()
		if ok != c.known || !next.Equal(c.next) {
			t.Errorf("%s: next %v %v, want %v %v", c.name, next, ok, c.next, c.known)
		}
		if late, _ := c.m.Overdue(c.now, 0); late != c.overdue {
			t.Errorf("%s: overdue %v, want %v", c.name, late, c.overdue)
		}
		if s := c.m.Schedule(); s != c.schedule {
			t.Errorf("%s: schedule %q, want %q", c.name, s, c.schedule)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := ConfigFromEnv(env(nil))
	if err != nil || c.OverdueSlack != 24*time.Hour || c.StuckAfter != 6*time.Hour || c.CertExpiry != 30*24*time.Hour || c.AccessKeyMaxAge != 90*24*time.Hour || c.Namespace != "SecretsRotation" {
		t.Errorf("defaults: %+v %v", c, err)
	}
	for k, v := range map[string]string{"STUCK_AFTER": "10s", "OVERDUE_SLACK": "soon", "CERT_EXPIRY_DAYS": "0", "ACCESS_KEY_MAX_AGE": "5000d"} {
		if _, err := ConfigFromEnv(env(map[string]string{k: v})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}
