package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// The kinds of finding, the value of the "finding" field and dimension.
const (
	Overdue    = "overdue"    // rotation on, and later than its window plus the slack
	Stuck      = "stuck"      // AWSPENDING on a version that is not AWSCURRENT, for too long
	Disabled   = "disabled"   // tagged as requiring rotation, but rotation is off
	Expiring   = "expiring"   // the tlscert certificate expires soon (or has expired)
	KeyAge     = "key_age"    // the iamkey access key is older than its maximum age
	Unreadable = "unreadable" // the auditor may not read the secret's metadata
)

// Kinds lists every kind of finding.
var Kinds = []string{Overdue, Stuck, Disabled, Expiring, KeyAge, Unreadable}

// Metric names of the auditor's Embedded Metric Format records.
const (
	MetricFinding        = "AuditFinding"        // 1 per finding, dimension finding
	MetricSecretsAudited = "AuditSecretsAudited" // secrets in scope, per run
	MetricFindings       = "AuditFindings"       // findings, per run
)

// API is what the auditor calls; *secretsmanager.Client satisfies it. It
// never reads a secret value.
type API interface {
	ListSecrets(context.Context, *secretsmanager.ListSecretsInput, ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
	ListSecretVersionIds(context.Context, *secretsmanager.ListSecretVersionIdsInput, ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error)
}

// Config is the auditor's configuration, from its environment.
//
//	Variable            Default          Meaning
//	NAME_PREFIX         (all secrets)    audit only secrets whose name starts with this
//	OVERDUE_SLACK       1d               a rotation is overdue this long after its window closed
//	STUCK_AFTER         6h               an AWSPENDING version older than this is a stuck rotation
//	CERT_EXPIRY_DAYS    30               warn when a certificate expires within this many days
//	ACCESS_KEY_MAX_AGE  90d              warn when an access key is older than this
//	METRICS_NAMESPACE   SecretsRotation  CloudWatch namespace of the metrics ("off": none)
//	AWS_REGION          (set by Lambda)  replicas whose primary is in another region are skipped
type Config struct {
	NamePrefix      string
	OverdueSlack    time.Duration
	StuckAfter      time.Duration
	CertExpiry      time.Duration
	AccessKeyMaxAge time.Duration
	Namespace       string
	Region          string
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// ConfigFromEnv reads and validates the configuration through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		NamePrefix: strings.TrimSpace(getenv("NAME_PREFIX")),
		Namespace:  strings.TrimSpace(getenv("METRICS_NAMESPACE")),
		Region:     strings.TrimSpace(getenv("AWS_REGION")),
	}
	switch c.Namespace {
	case "":
		c.Namespace = "SecretsRotation"
	case "off":
		c.Namespace = ""
	}
	var err error
	if c.OverdueSlack, err = duration(getenv, "OVERDUE_SLACK", 24*time.Hour, 0); err != nil {
		return Config{}, err
	}
	if c.StuckAfter, err = duration(getenv, "STUCK_AFTER", 6*time.Hour, time.Minute); err != nil {
		return Config{}, err
	}
	if c.AccessKeyMaxAge, err = duration(getenv, "ACCESS_KEY_MAX_AGE", 90*24*time.Hour, time.Hour); err != nil {
		return Config{}, err
	}
	c.CertExpiry = 30 * 24 * time.Hour
	if s := strings.TrimSpace(getenv("CERT_EXPIRY_DAYS")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 3650 {
			return Config{}, fmt.Errorf("CERT_EXPIRY_DAYS=%q is not a whole number of days between 1 and 3650", s)
		}
		c.CertExpiry = time.Duration(n) * 24 * time.Hour
	}
	return c, nil
}

// duration reads a Go duration (36h) or a number of days (90d).
func duration(getenv func(string) string, name string, def, min time.Duration) (time.Duration, error) {
	s := strings.TrimSpace(getenv(name))
	if s == "" {
		return def, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("%s=%q is not a duration such as 90d or 36h", name, s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%s=%q is not a duration such as 90d or 36h", name, s)
		}
	}
	if d < min || d > 3650*24*time.Hour {
		return 0, fmt.Errorf("%s=%q must be between %s and 3650d", name, s, min)
	}
	return d, nil
}

// Describe returns the configuration as log attributes.
func (c Config) Describe() []slog.Attr {
	return []slog.Attr{
		slog.String("name_prefix", c.NamePrefix),
		slog.Duration("overdue_slack", c.OverdueSlack),
		slog.Duration("stuck_after", c.StuckAfter),
		slog.Duration("cert_expiry", c.CertExpiry),
		slog.Duration("access_key_max_age", c.AccessKeyMaxAge),
		slog.String("metrics_namespace", c.Namespace),
	}
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Finding is one thing that needs attention.
type Finding struct {
	Kind    string
	ARN     string
	Name    string
	Message string
	// Attrs are the details of the kind (due date, version, expiry ...).
	Attrs []slog.Attr
}

// Report is what one run found.
type Report struct {
	Listed, InScope, Replicas int
	Findings                  []Finding
}

// Count returns the findings of kind.
func (r Report) Count(kind string) int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind == kind {
			n++
		}
	}
	return n
}

// Auditor checks the rotation of every secret in scope.
type Auditor struct {
	api API
	cfg Config
	log *slog.Logger
}

// New returns an Auditor that writes its findings to log.
func New(api API, cfg Config, log *slog.Logger) *Auditor {
	if log == nil {
		log = slog.Default()
	}
	return &Auditor{api: api, cfg: cfg, log: log}
}

// Run lists the secrets, checks those in scope (rotation on, or tagged as
// requiring it) and writes one log line per finding, then a summary line;
// each line is also an Embedded Metric Format record. A secret whose
// metadata it may not read is an "unreadable" finding, not a failure; only a
// ListSecrets that fails fails the run.
func (a *Auditor) Run(ctx context.Context) (Report, error) {
	start := time.Now()
	now := a.cfg.now()
	var rep Report
	in := &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(100)}
	if a.cfg.NamePrefix != "" {
		in.Filters = []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{a.cfg.NamePrefix}}}
	}
	p := secretsmanager.NewListSecretsPaginator(a.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			a.log.LogAttrs(ctx, slog.LevelError, "audit failed", slog.String("error", err.Error()))
			return rep, fmt.Errorf("list secrets: %w", err)
		}
		for _, e := range page.SecretList {
			m := FromListEntry(e)
			if !strings.HasPrefix(m.Name, a.cfg.NamePrefix) {
				continue
			}
			rep.Listed++
			if m.IsReplica(a.cfg.Region) {
				// Rotated, and audited, in its primary region.
				rep.Replicas++
				continue
			}
			if !m.Enabled() && !m.Required() {
				continue
			}
			rep.InScope++
			rep.Findings = append(rep.Findings, a.check(ctx, m, now)...)
		}
	}
	sort.SliceStable(rep.Findings, func(i, j int) bool { return rep.Findings[i].Name < rep.Findings[j].Name })
	for _, f := range rep.Findings {
		a.emit(ctx, f, now)
	}
	a.summary(ctx, rep, now, time.Since(start))
	return rep, nil
}

// check returns the findings of one secret in scope.
func (a *Auditor) check(ctx context.Context, m Metadata, now time.Time) []Finding {
	var out []Finding
	add := func(kind, msg string, attrs ...slog.Attr) {
		out = append(out, Finding{Kind: kind, ARN: m.ARN, Name: m.Name, Message: msg, Attrs: attrs})
	}
	if !m.Enabled() {
		add(Disabled, "rotation is off on a secret tagged "+TagRequired+"=true",
			slog.String("rotation_function", m.RotationLambdaARN))
	}
	if late, by := m.Overdue(now, a.cfg.OverdueSlack); late {
		next, _ := m.Next()
		add(Overdue, fmt.Sprintf("rotation was due %s, %s ago", next.UTC().Format(time.RFC3339), by.Round(time.Minute)),
			slog.Time("next_rotation", next.UTC()), slog.Float64("overdue_hours", hours(by)),
			slog.String("schedule", m.Schedule()), slog.String("rotation_function", m.RotationLambdaARN))
	}
	if id, open := m.PendingVersion(); open {
		created, err := a.created(ctx, m.ARN, id)
		switch {
		case err != nil:
			add(Unreadable, "cannot date the AWSPENDING version: "+err.Error(), slog.String("pending_version_id", id))
		case created.IsZero():
			add(Stuck, "AWSPENDING is on version "+id+", which Secrets Manager does not date",
				slog.String("pending_version_id", id))
		case now.Sub(created) > a.cfg.StuckAfter:
			add(Stuck, fmt.Sprintf("AWSPENDING has been on version %s since %s: the rotation failed or was abandoned", id, created.UTC().Format(time.RFC3339)),
				slog.String("pending_version_id", id), slog.Time("pending_since", created.UTC()), slog.Float64("pending_hours", hours(now.Sub(created))))
		}
	}
	if t, ok, err := m.TagTime(TagCertNotAfter); err != nil {
		add(Unreadable, err.Error(), slog.String("tag", TagCertNotAfter))
	} else if ok && t.Sub(now) < a.cfg.CertExpiry {
		msg := fmt.Sprintf("the current certificate expires on %s, in %.1f days", t.UTC().Format(time.RFC3339), hours(t.Sub(now))/24)
		if !now.Before(t) {
			msg = "the current certificate expired on " + t.UTC().Format(time.RFC3339)
		}
		add(Expiring, msg, slog.Time("not_after", t.UTC()), slog.Float64("days_left", hours(t.Sub(now))/24))
	}
	if t, ok, err := m.TagTime(TagKeyCreated); err != nil {
		add(Unreadable, err.Error(), slog.String("tag", TagKeyCreated))
	} else if ok && now.Sub(t) > a.cfg.AccessKeyMaxAge {
		add(KeyAge, fmt.Sprintf("the current access key was created on %s, %.0f days ago", t.UTC().Format(time.RFC3339), hours(now.Sub(t))/24),
			slog.Time("key_created", t.UTC()), slog.Float64("key_age_days", hours(now.Sub(t))/24))
	}
	return out
}

// created dates a version (DescribeSecret and ListSecrets do not).
func (a *Auditor) created(ctx context.Context, arn, id string) (time.Time, error) {
	p := secretsmanager.NewListSecretVersionIdsPaginator(a.api, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(arn)})
	for page := 0; p.HasMorePages() && page < 5; page++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			return time.Time{}, err
		}
		for _, v := range out.Versions {
			if aws.ToString(v.VersionId) == id {
				return aws.ToTime(v.CreatedDate), nil
			}
		}
	}
	return time.Time{}, nil
}

func hours(d time.Duration) float64 { return float64(d.Round(time.Minute)) / float64(time.Hour) }

// emit writes the log line (and metric) of one finding.
func (a *Auditor) emit(ctx context.Context, f Finding, now time.Time) {
	attrs := []slog.Attr{
		slog.String("finding", f.Kind),
		slog.String("secret_arn", f.ARN),
		slog.String("secret_name", f.Name),
		slog.String("message", f.Message),
	}
	attrs = append(attrs, f.Attrs...)
	if a.cfg.Namespace != "" {
		attrs = append(attrs, a.emf(now, []string{"finding"}, MetricFinding), slog.Int(MetricFinding, 1))
	}
	a.log.LogAttrs(ctx, slog.LevelWarn, "audit finding", attrs...)
}

// summary writes the run's line (and metrics).
func (a *Auditor) summary(ctx context.Context, rep Report, now time.Time, took time.Duration) {
	counts := map[string]int{}
	for _, k := range Kinds {
		counts[k] = rep.Count(k)
	}
	attrs := []slog.Attr{
		slog.Int("secrets_listed", rep.Listed),
		slog.Int("secrets_in_scope", rep.InScope),
		slog.Int("replicas_skipped", rep.Replicas),
		slog.Any("findings", counts),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000),
	}
	if a.cfg.Namespace != "" {
		attrs = append(attrs, a.emf(now, []string{}, MetricSecretsAudited, MetricFindings),
			slog.Int(MetricSecretsAudited, rep.InScope), slog.Int(MetricFindings, len(rep.Findings)))
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "audit done", attrs...)
}

// emf is the _aws member that makes a log line an Embedded Metric Format
// record with the named count metrics and the given dimension set.
func (a *Auditor) emf(now time.Time, dims []string, metrics ...string) slog.Attr {
	var ms []map[string]string
	for _, m := range metrics {
		ms = append(ms, map[string]string{"Name": m, "Unit": "Count"})
	}
	return slog.Any("_aws", map[string]any{
		"Timestamp": now.UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  a.cfg.Namespace,
			"Dimensions": [][]string{dims},
			"Metrics":    ms,
		}},
	})
}
