// Package audit tells, from a secret's metadata alone, where its rotation
// stands: whether rotation is on and with which function and schedule, when
// it last rotated and should next, whether it is overdue, whether a rotation
// is stuck with an old AWSPENDING version, and what the tags that the
// tlscert and iamkey functions maintain say about expiry and key age. It
// never reads a secret value.
//
// It is the package of the rotation auditor (functions/auditor), a
// scheduled Lambda function that is not a rotation function and does not
// use the rotation engine (internal/rotation), and of `rotationctl status`.
package audit

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Tags on secrets that the auditor reads. The tlscert and iamkey functions
// write theirs at the end of each rotation; the required tag is the
// operator's.
const (
	// TagRequired, with the value "true", puts a secret in the auditor's
	// scope even when its rotation is off, and makes that a finding.
	TagRequired = "secrets-rotation:required"
	// TagCertNotAfter is the expiry (RFC 3339) of the AWSCURRENT
	// certificate of a tlscert secret.
	TagCertNotAfter = "secrets-rotation:cert-not-after"
	// TagKeyCreated is the creation time (RFC 3339) of the AWSCURRENT
	// access key of an iamkey secret.
	TagKeyCreated = "secrets-rotation:key-created"
)

// Metadata is what Secrets Manager says about a secret, without its value:
// the common part of a ListSecrets entry and a DescribeSecret answer.
type Metadata struct {
	ARN, Name         string
	Description       string
	RotationEnabled   *bool
	RotationLambdaARN string
	Rules             *smtypes.RotationRulesType
	Created           time.Time
	LastRotated       time.Time
	NextRotation      time.Time
	Stages            map[string][]string
	Tags              map[string]string
	PrimaryRegion     string
	Replicas          []smtypes.ReplicationStatusType
}

// FromListEntry converts a ListSecrets entry.
func FromListEntry(e smtypes.SecretListEntry) Metadata {
	return Metadata{
		ARN: aws.ToString(e.ARN), Name: aws.ToString(e.Name), Description: aws.ToString(e.Description),
		RotationEnabled: e.RotationEnabled, RotationLambdaARN: aws.ToString(e.RotationLambdaARN), Rules: e.RotationRules,
		Created: aws.ToTime(e.CreatedDate), LastRotated: aws.ToTime(e.LastRotatedDate), NextRotation: aws.ToTime(e.NextRotationDate),
		Stages: e.SecretVersionsToStages, Tags: tagMap(e.Tags), PrimaryRegion: aws.ToString(e.PrimaryRegion),
	}
}

// FromDescribe converts a DescribeSecret answer.
func FromDescribe(d *secretsmanager.DescribeSecretOutput) Metadata {
	return Metadata{
		ARN: aws.ToString(d.ARN), Name: aws.ToString(d.Name), Description: aws.ToString(d.Description),
		RotationEnabled: d.RotationEnabled, RotationLambdaARN: aws.ToString(d.RotationLambdaARN), Rules: d.RotationRules,
		Created: aws.ToTime(d.CreatedDate), LastRotated: aws.ToTime(d.LastRotatedDate), NextRotation: aws.ToTime(d.NextRotationDate),
		Stages: d.VersionIdsToStages, Tags: tagMap(d.Tags), PrimaryRegion: aws.ToString(d.PrimaryRegion), Replicas: d.ReplicationStatus,
	}
}

func tagMap(tags []smtypes.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// Enabled reports whether rotation is on. Secrets Manager leaves the field
// out for a secret whose rotation was never set up.
func (m Metadata) Enabled() bool { return m.RotationEnabled != nil && *m.RotationEnabled }

// Required reports whether the secret is tagged as requiring rotation.
func (m Metadata) Required() bool {
	return strings.EqualFold(strings.TrimSpace(m.Tags[TagRequired]), "true")
}

// IsReplica reports whether the secret read is a replica of a secret whose
// primary is in another region: its rotation runs (and is audited) there.
func (m Metadata) IsReplica(region string) bool {
	return m.PrimaryRegion != "" && region != "" && m.PrimaryRegion != region
}

// PendingVersion returns the version that carries AWSPENDING but not
// AWSCURRENT: a rotation that has not finished.
func (m Metadata) PendingVersion() (string, bool) {
	for id, st := range m.Stages {
		if slices.Contains(st, "AWSPENDING") && !slices.Contains(st, "AWSCURRENT") {
			return id, true
		}
	}
	return "", false
}

// Schedule describes the rotation rules for people: "every 30 days",
// "rate(10 days)", "cron(0 4 ? * SUN *)", with the window when set.
func (m Metadata) Schedule() string {
	r := m.Rules
	if r == nil {
		return ""
	}
	var s string
	switch {
	case r.ScheduleExpression != nil:
		s = aws.ToString(r.ScheduleExpression)
	case r.AutomaticallyAfterDays != nil:
		s = fmt.Sprintf("every %d days", aws.ToInt64(r.AutomaticallyAfterDays))
	}
	if d := aws.ToString(r.Duration); d != "" {
		s += ", window " + d
	}
	return s
}

var rateRE = regexp.MustCompile(`^rate\(\s*(\d+)\s+(hour|hours|day|days)\s*\)$`)

// interval is the time between rotations, when the rules give a fixed one
// (AutomaticallyAfterDays or a rate expression); a cron expression gives 0.
func (m Metadata) interval() time.Duration {
	r := m.Rules
	if r == nil {
		return 0
	}
	if r.ScheduleExpression != nil {
		mm := rateRE.FindStringSubmatch(strings.TrimSpace(aws.ToString(r.ScheduleExpression)))
		if mm == nil {
			return 0
		}
		n, _ := strconv.Atoi(mm[1])
		if strings.HasPrefix(mm[2], "hour") {
			return time.Duration(n) * time.Hour
		}
		return time.Duration(n) * 24 * time.Hour
	}
	return time.Duration(aws.ToInt64(r.AutomaticallyAfterDays)) * 24 * time.Hour
}

// Window is how long Secrets Manager may take, after a rotation is due, to
// start it: the rules' Duration, or the rest of the day (taken as 24 hours)
// when there is none.
func (m Metadata) Window() time.Duration {
	if m.Rules != nil {
		if d, err := time.ParseDuration(strings.TrimSpace(aws.ToString(m.Rules.Duration))); err == nil && d > 0 {
			return d
		}
	}
	return 24 * time.Hour
}

// Next returns when the next rotation is due: Secrets Manager's
// NextRotationDate, or, when it does not say, the last rotation (or the
// creation) plus the interval of the rules. ok is false when neither is
// known (a cron schedule that Secrets Manager did not date).
func (m Metadata) Next() (time.Time, bool) {
	if !m.NextRotation.IsZero() {
		return m.NextRotation, true
	}
	iv := m.interval()
	if iv == 0 {
		return time.Time{}, false
	}
	last := m.LastRotated
	if last.IsZero() {
		last = m.Created
	}
	if last.IsZero() {
		return time.Time{}, false
	}
	return last.Add(iv), true
}

// Overdue reports whether a rotation that is on is late by more than slack
// past the end of its window, and by how much past the due time.
func (m Metadata) Overdue(now time.Time, slack time.Duration) (bool, time.Duration) {
	if !m.Enabled() {
		return false, 0
	}
	next, ok := m.Next()
	if !ok {
		return false, 0
	}
	late := now.Sub(next)
	return late > m.Window()+slack, late
}

// TagTime reads a tag holding an RFC 3339 time; ok is false when it is
// absent, and err set when it is malformed.
func (m Metadata) TagTime(key string) (t time.Time, ok bool, err error) {
	v, ok := m.Tags[key]
	if !ok {
		return time.Time{}, false, nil
	}
	t, err = time.Parse(time.RFC3339, strings.TrimSpace(v))
	if err != nil {
		return time.Time{}, true, fmt.Errorf("tag %s of %s is not an RFC 3339 time", key, m.Name)
	}
	return t, true, nil
}

// FunctionName is the last part of the rotation function's ARN.
func (m Metadata) FunctionName() string {
	arn := m.RotationLambdaARN
	if i := strings.LastIndex(arn, ":function:"); i >= 0 {
		return strings.SplitN(arn[i+len(":function:"):], ":", 2)[0]
	}
	return arn
}
