package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/audit"
)

const statusAbout = `Shows every secret of the account and region (or those whose name starts
with -prefix) with its rotation state: on or off, function, schedule, last
and next rotation, overdue or not, an AWSPENDING version that is not current
and its age (a rotation in progress, stuck or failed), and, where the
function's log is readable, the last failed step of the last -since. It reads
metadata and logs only, never a secret value.`

// secretStatus is one row of the status.
type secretStatus struct {
	Name            string       `json:"name"`
	ARN             string       `json:"arn"`
	RotationEnabled bool         `json:"rotation_enabled"`
	Function        string       `json:"function,omitempty"`
	Schedule        string       `json:"schedule,omitempty"`
	LastRotated     *time.Time   `json:"last_rotated,omitempty"`
	NextRotation    *time.Time   `json:"next_rotation,omitempty"`
	Overdue         bool         `json:"overdue"`
	OverdueBy       string       `json:"overdue_by,omitempty"`
	Pending         *pending     `json:"pending,omitempty"`
	Required        bool         `json:"required"`
	PrimaryRegion   string       `json:"primary_region,omitempty"`
	Replicas        []string     `json:"replicas,omitempty"`
	LastFailure     *lastFailure `json:"last_failure,omitempty"`
	LogsNote        string       `json:"logs_note,omitempty"`
}

type pending struct {
	VersionID string     `json:"version_id"`
	Since     *time.Time `json:"since,omitempty"`
	Age       string     `json:"age,omitempty"`
}

type lastFailure struct {
	Time      time.Time `json:"time"`
	Step      string    `json:"step"`
	VersionID string    `json:"version_id"`
	Error     string    `json:"error"`
}

func runStatus(ctx context.Context, c cli, args []string) error {
	fs := newFlags(c, "status", "[flags]", statusAbout)
	var af awsFlags
	af.register(fs)
	prefix := fs.String("prefix", "", "only secrets whose name starts with this")
	asJSON := fs.Bool("json", false, "print JSON (an array, one object per secret) for scripts")
	readLogs := fs.Bool("logs", true, "read the last failure from each rotation function's log")
	since := fs.Duration("since", 7*24*time.Hour, "how far back to look for failures in the logs")
	slack := fs.Duration("slack", 0, "a rotation is overdue when it is later than its window plus this")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := af.load(ctx)
	if err != nil {
		return err
	}
	sm := secretsmanager.NewFromConfig(cfg)
	now := time.Now()
	metas, err := listSecrets(ctx, sm, *prefix)
	if err != nil {
		return err
	}
	var rows []secretStatus
	for _, m := range metas {
		row := secretStatus{
			Name: m.Name, ARN: m.ARN, RotationEnabled: m.Enabled(), Function: m.FunctionName(), Schedule: m.Schedule(),
			Required: m.Required(),
		}
		if m.IsReplica(cfg.Region) {
			row.PrimaryRegion = m.PrimaryRegion
		}
		if !m.LastRotated.IsZero() {
			t := m.LastRotated.UTC()
			row.LastRotated = &t
		}
		if next, ok := m.Next(); ok && m.Enabled() {
			t := next.UTC()
			row.NextRotation = &t
		}
		if late, by := m.Overdue(now, *slack); late {
			row.Overdue, row.OverdueBy = true, age(by)
		}
		if id, open := m.PendingVersion(); open {
			p := &pending{VersionID: id}
			if t, err := pendingSince(ctx, sm, m.ARN, id); err == nil && !t.IsZero() {
				t = t.UTC()
				p.Since, p.Age = &t, age(now.Sub(t))
			}
			row.Pending = p
		}
		rows = append(rows, row)
	}
	if *readLogs {
		addFailures(ctx, lambda.NewFromConfig(cfg), cloudwatchlogs.NewFromConfig(cfg), metas, rows, now.Add(-*since))
	}
	if *asJSON {
		if rows == nil {
			rows = []secretStatus{}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	printStatus(c, rows)
	return nil
}

// listSecrets lists the secrets whose name starts with prefix, by name.
func listSecrets(ctx context.Context, sm *secretsmanager.Client, prefix string) ([]audit.Metadata, error) {
	in := &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(100)}
	if prefix != "" {
		in.Filters = []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{prefix}}}
	}
	var out []audit.Metadata
	p := secretsmanager.NewListSecretsPaginator(sm, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list secrets: %w", err)
		}
		for _, e := range page.SecretList {
			m := audit.FromListEntry(e)
			// The service's name filter also matches words inside a name.
			if strings.HasPrefix(m.Name, prefix) {
				out = append(out, m)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// addFailures reads, once per rotation function, the failed steps of the
// period from its log, and gives each secret its latest one.
func addFailures(ctx context.Context, lc *lambda.Client, logs *cloudwatchlogs.Client, metas []audit.Metadata, rows []secretStatus, since time.Time) {
	byFunction := map[string][]int{}
	for i, m := range metas {
		if m.RotationLambdaARN != "" {
			byFunction[m.RotationLambdaARN] = append(byFunction[m.RotationLambdaARN], i)
		}
	}
	for fn, idx := range byFunction {
		failures, err := failuresOf(ctx, lc, logs, fn, since)
		for _, i := range idx {
			if err != nil {
				rows[i].LogsNote = "the log of " + metas[i].FunctionName() + " is not readable: " + err.Error()
				continue
			}
			if f, ok := failures[metas[i].ARN]; ok {
				rows[i].LastFailure = &f
			}
		}
	}
}

// failuresOf returns the latest failed step per secret ARN in the log of fn.
func failuresOf(ctx context.Context, lc *lambda.Client, logs *cloudwatchlogs.Client, fn string, since time.Time) (map[string]lastFailure, error) {
	group, err := logGroupOf(ctx, lc, fn)
	if err != nil {
		return nil, err
	}
	out := map[string]lastFailure{}
	p := cloudwatchlogs.NewFilterLogEventsPaginator(logs, &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName:  aws.String(group),
		StartTime:     aws.Int64(since.UnixMilli()),
		FilterPattern: aws.String(`"rotation step failed"`),
	})
	for page := 0; p.HasMorePages() && page < 20; page++ {
		res, err := p.NextPage(ctx)
		var missing *cwltypes.ResourceNotFoundException
		if errors.As(err, &missing) {
			return out, nil // the function never logged: it never failed either
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", group, err)
		}
		for _, ev := range res.Events {
			var l stepLine
			if json.Unmarshal([]byte(aws.ToString(ev.Message)), &l) != nil || l.Outcome != "failure" || l.SecretARN == "" {
				continue
			}
			t := time.UnixMilli(aws.ToInt64(ev.Timestamp)).UTC()
			if prev, ok := out[l.SecretARN]; !ok || t.After(prev.Time) {
				out[l.SecretARN] = lastFailure{Time: t, Step: l.Step, VersionID: l.VersionID, Error: l.Error}
			}
		}
	}
	return out, nil
}

func printStatus(c cli, rows []secretStatus) {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SECRET\tROTATION\tFUNCTION\tSCHEDULE\tLAST ROTATED\tNEXT\tSTATE\tLAST FAILURE")
	var notes []string
	for _, r := range rows {
		rot := "off"
		if r.RotationEnabled {
			rot = "on"
		}
		state := "ok"
		switch {
		case r.Pending != nil:
			state = "PENDING " + r.Pending.VersionID[:min(8, len(r.Pending.VersionID))]
			if r.Pending.Age != "" {
				state += " for " + r.Pending.Age
			}
		case r.Overdue:
			state = "OVERDUE by " + r.OverdueBy
		case !r.RotationEnabled && r.Required:
			state = "OFF but required"
		case !r.RotationEnabled:
			state = "-"
		}
		if r.Pending != nil && r.Overdue {
			state += ", OVERDUE by " + r.OverdueBy
		}
		if r.PrimaryRegion != "" {
			state += " (replica of " + r.PrimaryRegion + ")"
		}
		failure := "-"
		if r.LastFailure != nil {
			failure = fmt.Sprintf("%s %s: %s", day(r.LastFailure.Time), r.LastFailure.Step, oneLine(r.LastFailure.Error, 80))
		} else if r.LogsNote != "" {
			failure = "?"
			notes = append(notes, r.LogsNote)
		}
		next := "-"
		if r.NextRotation != nil {
			next = day(*r.NextRotation)
		}
		last := "-"
		if r.LastRotated != nil {
			last = day(*r.LastRotated)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, rot, dash(r.Function), dash(r.Schedule), last, next, state, failure)
	}
	tw.Flush()
	if len(rows) == 0 {
		fmt.Fprintln(c.stdout, "(no secrets)")
	}
	if len(notes) > 0 {
		fmt.Fprintln(c.stdout, "\n? the last failure is unknown:")
		for _, n := range uniq(notes) {
			fmt.Fprintf(c.stdout, "  %s\n", n)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
