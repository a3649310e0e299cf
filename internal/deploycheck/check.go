package deploycheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
)

// Report is what Check found: Problems make the check fail; Compared and
// NotRead say what it looked at, for the test's log.
type Report struct {
	Problems []string
	Compared int      // properties compared with the template
	NotRead  []string // what could not be read back, and why
}

// Err returns the problems as one error, or nil.
func (r *Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return errors.New("the deployed stack differs from the template:\n  " + strings.Join(r.Problems, "\n  "))
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// mustBeUnset are properties that, absent from the template, must be absent
// from what was deployed too (a stray VPC, key or policy is a mistake).
var mustBeUnset = map[string]bool{"KmsKeyId": true, "VpcConfig": true, "ManagedPolicyArns": true}

// synthetic are keys the readers add for the check's own use.
var synthetic = map[string]bool{"Arn": true, "State": true, "EventPatternJSON": true}

// stackState is everything the check knows about one deployed stack.
type stackState struct {
	c         *Clients
	name      string
	tpl       Template // the processed template (after the SAM transform)
	types     map[string]string
	physical  map[string]string
	status    map[string]string
	deployed  map[string]map[string]any
	readErr   map[string]error
	res       *resolver
	samples   string
	accountID string
}

// Check reads back stack and compares it with the template it was deployed
// from (CloudFormation's processed template: template.yaml after the SAM
// transform), then checks the wiring between its resources. samples is the
// directory of sample events: <samples>/<RuleLogicalId>/match-*.json must
// match that rule's deployed pattern and nomatch-*.json must not.
func Check(ctx context.Context, c *Clients, stack, samples string) (*Report, error) {
	rep := &Report{}
	ds, err := c.CFN.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil || len(ds.Stacks) != 1 {
		return nil, fmt.Errorf("describe stack %s: %v", stack, err)
	}
	st := ds.Stacks[0]
	gt, err := c.CFN.GetTemplate(ctx, &cloudformation.GetTemplateInput{StackName: aws.String(stack), TemplateStage: cfntypes.TemplateStageProcessed})
	if err != nil {
		return nil, fmt.Errorf("get processed template of %s: %w", stack, err)
	}
	tpl, err := ParseTemplate([]byte(aws.ToString(gt.TemplateBody)))
	if err != nil {
		return nil, fmt.Errorf("processed template of %s: %w", stack, err)
	}
	rs, err := c.CFN.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(stack)})
	if err != nil {
		return nil, fmt.Errorf("describe resources of %s: %w", stack, err)
	}
	// arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID
	arnParts := strings.Split(aws.ToString(st.StackId), ":")
	if len(arnParts) < 6 {
		return nil, fmt.Errorf("stack id %q is not an ARN", aws.ToString(st.StackId))
	}
	s := &stackState{
		c: c, name: stack, tpl: tpl, samples: samples, accountID: arnParts[4],
		types: map[string]string{}, physical: map[string]string{}, status: map[string]string{},
		deployed: map[string]map[string]any{}, readErr: map[string]error{},
	}
	for _, r := range rs.StackResources {
		id := aws.ToString(r.LogicalResourceId)
		s.types[id] = aws.ToString(r.ResourceType)
		s.physical[id] = aws.ToString(r.PhysicalResourceId)
		s.status[id] = string(r.ResourceStatus)
	}
	params := map[string]any{}
	decls := tpl.Parameters()
	for _, p := range st.Parameters {
		k, v := aws.ToString(p.ParameterKey), aws.ToString(p.ParameterValue)
		if t, _ := decls[k]["Type"].(string); t == "CommaDelimitedList" || strings.HasPrefix(t, "List<") {
			var l []any
			for _, e := range strings.Split(v, ",") {
				l = append(l, strings.TrimSpace(e))
			}
			params[k] = l
		} else {
			params[k] = v
		}
	}
	s.res = &resolver{
		tpl: tpl, params: params, physical: s.physical, conditions: map[string]bool{},
		pseudo: map[string]string{
			"AWS::StackName": stack, "AWS::StackId": aws.ToString(st.StackId), "AWS::Region": arnParts[3],
			"AWS::AccountId": arnParts[4], "AWS::Partition": arnParts[1], "AWS::URLSuffix": "amazonaws.com",
		},
		attr: s.attr,
	}
	s.compareResources(ctx, rep)
	s.compareOutputs(st, rep)
	s.checkWiring(ctx, rep)
	return rep, nil
}

// read returns a deployed resource, read once.
func (s *stackState) read(ctx context.Context, id string) (map[string]any, error) {
	if m, ok := s.deployed[id]; ok {
		return m, nil
	}
	if err, ok := s.readErr[id]; ok {
		return nil, err
	}
	rd, ok := readers[s.types[id]]
	if !ok {
		return nil, fmt.Errorf("%s: no reader for %s", id, s.types[id])
	}
	props := map[string]any{}
	if decl, ok := s.tpl.Resources()[id]; ok {
		if p, ok := decl["Properties"].(map[string]any); ok {
			if v, err := s.res.eval(p); err == nil {
				props, _ = v.(map[string]any)
			}
		}
	}
	m, err := rd(ctx, s.c, s.physical[id], props)
	if err != nil {
		err = fmt.Errorf("%s (%s %s): %w", id, s.types[id], s.physical[id], err)
		s.readErr[id] = err
		return nil, err
	}
	s.deployed[id] = m
	return m, nil
}

func (s *stackState) attr(id, name string) (string, error) {
	if _, ok := s.physical[id]; !ok {
		return "", fmt.Errorf("Fn::GetAtt %s.%s: %s is not in the stack", id, name, id)
	}
	m, err := s.read(context.Background(), id)
	if err != nil {
		return "", fmt.Errorf("Fn::GetAtt %s.%s: %w", id, name, err)
	}
	v, ok := m[name]
	if !ok {
		return "", fmt.Errorf("Fn::GetAtt %s.%s: the check does not read attribute %s of %s", id, name, name, s.types[id])
	}
	return scalar(v), nil
}

func (s *stackState) compareResources(ctx context.Context, rep *Report) {
	res := s.tpl.Resources()
	for _, id := range sortedKeys(res) {
		decl := res[id]
		typ, _ := decl["Type"].(string)
		on, err := s.res.active(decl)
		if err != nil {
			rep.problem("%s: %v", id, err)
			continue
		}
		_, made := s.physical[id]
		if !on {
			if made {
				rep.problem("%s: made although its condition %v is false", id, decl["Condition"])
			}
			continue
		}
		if !made {
			rep.problem("%s (%s): in the template, not in the stack", id, typ)
			continue
		}
		if st := s.status[id]; !strings.HasSuffix(st, "_COMPLETE") {
			rep.problem("%s: status %s", id, st)
		}
		if why, ok := notServed[typ]; ok {
			rep.NotRead = append(rep.NotRead, fmt.Sprintf("%s (%s): %s", id, typ, why))
			continue
		}
		got, err := s.read(ctx, id)
		if err != nil {
			rep.problem("read back %v", err)
			continue
		}
		var want map[string]any
		if p, ok := decl["Properties"].(map[string]any); ok {
			v, err := s.res.eval(p)
			if err != nil {
				rep.problem("%s: resolve its properties: %v", id, err)
				continue
			}
			want, _ = v.(map[string]any)
		}
		for _, k := range sortedKeys(want) {
			if why, ok := notKept[typ+"."+k]; ok {
				rep.NotRead = append(rep.NotRead, fmt.Sprintf("%s.%s: %s", id, k, why))
				continue
			}
			if _, ok := got[k]; !ok {
				rep.problem("%s.%s: the check does not read this property of %s back: add it to its reader (internal/deploycheck/read.go)", id, k, typ)
				continue
			}
			rep.Compared++
			rep.Problems = append(rep.Problems, diff(id+"."+k, want[k], got[k])...)
		}
		for _, k := range sortedKeys(got) {
			if _, set := want[k]; !set && mustBeUnset[k] && !empty(got[k]) {
				rep.problem("%s.%s: not in the template, deployed %s", id, k, show(got[k]))
			}
		}
		if typ == "AWS::Lambda::Function" && got["State"] != "Active" {
			rep.problem("%s: function state %v, want Active", id, got["State"])
		}
	}
}

func (s *stackState) compareOutputs(st cfntypes.Stack, rep *Report) {
	outs, _ := s.tpl["Outputs"].(map[string]any)
	deployed := map[string]cfntypes.Output{}
	for _, o := range st.Outputs {
		deployed[aws.ToString(o.OutputKey)] = o
	}
	for _, k := range sortedKeys(outs) {
		decl, _ := outs[k].(map[string]any)
		on, err := s.res.active(decl)
		if err != nil {
			rep.problem("output %s: %v", k, err)
			continue
		}
		o, made := deployed[k]
		if !on {
			if made {
				rep.problem("output %s: present although its condition is false", k)
			}
			continue
		}
		if !made {
			rep.problem("output %s: in the template, not in the stack", k)
			continue
		}
		v, err := s.res.eval(decl["Value"])
		if err != nil {
			rep.problem("output %s: %v", k, err)
			continue
		}
		rep.Compared++
		rep.Problems = append(rep.Problems, diff("output "+k, scalar(v), aws.ToString(o.OutputValue))...)
		if exp, ok := decl["Export"].(map[string]any); ok {
			n, err := s.res.eval(exp["Name"])
			if err != nil {
				rep.problem("output %s export: %v", k, err)
				continue
			}
			rep.Compared++
			rep.Problems = append(rep.Problems, diff("output "+k+" export name", scalar(n), aws.ToString(o.ExportName))...)
		}
	}
}

// family is one function and the resources named after it.
type family struct {
	prefix, function string
	members          []string
}

// families groups the stack's resources by the function whose logical id
// prefix they carry: GenericFunction, GenericRole, GenericLogGroup,
// GenericFailureAlarm ... (the longest prefix wins).
func (s *stackState) families() []*family {
	var fams []*family
	for id, typ := range s.types {
		if typ == "AWS::Lambda::Function" && strings.HasSuffix(id, "Function") {
			fams = append(fams, &family{prefix: strings.TrimSuffix(id, "Function"), function: id})
		}
	}
	sort.Slice(fams, func(i, j int) bool { return len(fams[i].prefix) > len(fams[j].prefix) })
	for _, id := range sortedKeys(s.types) {
		for _, f := range fams {
			if id != f.function && strings.HasPrefix(id, f.prefix) {
				f.members = append(f.members, id)
				break
			}
		}
	}
	sort.Slice(fams, func(i, j int) bool { return fams[i].prefix < fams[j].prefix })
	return fams
}

func (s *stackState) checkWiring(ctx context.Context, rep *Report) {
	fams := s.families()
	if len(fams) == 0 {
		rep.problem("the stack has no function")
		return
	}
	names := map[string]string{} // deployed function name -> its logical id
	for _, f := range fams {
		names[s.physical[f.function]] = f.function
	}
	for _, f := range fams {
		fn, err := s.read(ctx, f.function)
		if err != nil {
			continue // reported already
		}
		fnArn := scalar(fn["Arn"])
		fnName := scalar(fn["FunctionName"])
		// Its role.
		roleID := f.prefix + "Role"
		role, err := s.read(ctx, roleID)
		if s.types[roleID] != "AWS::IAM::Role" || err != nil {
			rep.problem("%s: no role %s of its own in the stack (%v)", f.function, roleID, err)
		} else if scalar(fn["Role"]) != scalar(role["Arn"]) {
			rep.problem("%s runs with role %s, not with its own %s (%s)", f.function, fn["Role"], roleID, role["Arn"])
		}
		// Its log group.
		lgID := f.prefix + "LogGroup"
		lg, err := s.read(ctx, lgID)
		var lgArn string
		if s.types[lgID] != "AWS::Logs::LogGroup" || err != nil {
			rep.problem("%s: no log group %s of its own in the stack (%v)", f.function, lgID, err)
		} else {
			lgArn = strings.TrimSuffix(scalar(lg["Arn"]), ":*")
			logging, _ := fn["LoggingConfig"].(map[string]any)
			if got := scalar(logging["LogGroup"]); got != scalar(lg["LogGroupName"]) {
				rep.problem("%s logs into %q, not into its own %s (%q)", f.function, got, lgID, lg["LogGroupName"])
			}
		}
		// What its role's policies name: only its own log group and its own function.
		if role != nil {
			for _, str := range strings_(role["Policies"]) {
				if strings.Contains(str, ":log-group:") && lgArn != "" && strings.TrimSuffix(str, ":*") != lgArn {
					rep.problem("%s (the role of %s) grants on log group %s, not on its function's %s", roleID, f.function, str, lgArn)
				}
				if strings.Contains(str, ":lambda:") && strings.Contains(str, ":function:") && str != fnArn {
					rep.problem("%s (the role of %s) is bound to function %s, not to %s", roleID, f.function, str, fnArn)
				}
			}
		}
		for _, id := range f.members {
			if s.types[id] == "AWS::SecretsManager::RotationSchedule" {
				// Not made by LocalStack (see notServed): check what the
				// template asks for, resolved with the deployed ARNs.
				v, err := s.res.eval(s.tpl.Resources()[id]["Properties"])
				if err != nil {
					rep.problem("%s: %v", id, err)
					continue
				}
				pm, _ := v.(map[string]any)
				if got := scalar(pm["RotationLambdaARN"]); got != fnArn {
					rep.problem("%s rotates with %s, not with %s", id, got, fnArn)
				}
				continue
			}
			m, err := s.read(ctx, id)
			if err != nil {
				continue
			}
			switch s.types[id] {
			case "AWS::CloudWatch::Alarm":
				watched := map[string]bool{}
				for _, str := range alarmStrings(m) {
					for name := range names {
						if str == name || strings.Contains(str, "'"+name+"'") || strings.Contains(str, `"`+name+`"`) {
							watched[name] = true
						}
					}
				}
				if len(watched) != 1 || !watched[fnName] {
					rep.problem("%s watches functions %v, want only %s (%s)", id, sortedKeys(watched), fnName, f.function)
				}
			case "AWS::Lambda::Permission":
				if got := scalar(m["FunctionName"]); got != fnArn && got != fnName {
					rep.problem("%s is on function %s, not on %s", id, got, fnArn)
				}
			}
		}
	}
	s.checkRules(ctx, rep)
	s.checkTopicPolicies(ctx, rep)
}

// strings_ returns every string inside v.
func strings_(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, k := range sortedKeys(v) {
				walk(v[k])
			}
		}
	}
	walk(v)
	return out
}

// alarmStrings are the parts of an alarm that name what it watches.
func alarmStrings(m map[string]any) []string {
	return strings_(map[string]any{"Dimensions": m["Dimensions"], "Metrics": m["Metrics"]})
}

// checkRules tests each rule's deployed pattern with EventBridge's own
// matcher against sample events of what it is meant to catch.
func (s *stackState) checkRules(ctx context.Context, rep *Report) {
	for _, id := range sortedKeys(s.types) {
		if s.types[id] != "AWS::Events::Rule" {
			continue
		}
		r, err := s.read(ctx, id)
		if err != nil || scalar(r["EventPatternJSON"]) == "" {
			continue
		}
		dir := filepath.Join(s.samples, id)
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		matches := 0
		for _, f := range files {
			want := strings.HasPrefix(filepath.Base(f), "match-")
			if !want && !strings.HasPrefix(filepath.Base(f), "nomatch-") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				rep.problem("%s: %v", id, err)
				continue
			}
			out, err := s.c.Events.TestEventPattern(ctx, &eventbridge.TestEventPatternInput{
				Event: aws.String(string(b)), EventPattern: aws.String(scalar(r["EventPatternJSON"])),
			})
			if err != nil {
				rep.problem("%s: TestEventPattern with %s: %v", id, filepath.Base(f), err)
				continue
			}
			if out.Result != want {
				rep.problem("%s: its pattern %s %s the sample event %s", id, r["EventPatternJSON"], map[bool]string{true: "matches", false: "does not match"}[out.Result], filepath.Base(f))
			}
			if want {
				matches++
			}
		}
		if matches == 0 {
			rep.problem("%s: no sample event in %s/match-*.json to test its pattern with: add real events it must catch", id, dir)
		}
	}
}

// checkTopicPolicies checks that each topic policy lets publish exactly the
// rules and alarms that target its topics.
func (s *stackState) checkTopicPolicies(ctx context.Context, rep *Report) {
	for _, id := range sortedKeys(s.types) {
		if s.types[id] != "AWS::SNS::TopicPolicy" {
			continue
		}
		pol, err := s.read(ctx, id)
		if err != nil {
			continue
		}
		decl := s.tpl.Resources()[id]
		props, _ := s.res.eval(decl["Properties"])
		topics := map[string]bool{}
		if pm, ok := props.(map[string]any); ok {
			for _, t := range strings_(pm["Topics"]) {
				topics[t] = true
			}
		}
		doc, _ := pol["PolicyDocument"].(map[string]any)
		var statements []any
		switch st := doc["Statement"].(type) {
		case []any:
			statements = st
		case map[string]any:
			statements = []any{st}
		}
		sourceArns := map[string][]string{} // service -> SourceArn patterns
		for _, st := range statements {
			m, _ := st.(map[string]any)
			principal, _ := m["Principal"].(map[string]any)
			cond, _ := m["Condition"].(map[string]any)
			for _, svc := range strings_(principal["Service"]) {
				for _, op := range cond {
					if om, ok := op.(map[string]any); ok {
						for k, v := range om {
							if strings.EqualFold(k, "aws:SourceArn") {
								sourceArns[svc] = append(sourceArns[svc], strings_(v)...)
							}
						}
					}
				}
			}
		}
		for _, other := range sortedKeys(s.types) {
			var svc string
			var targets []string
			switch s.types[other] {
			case "AWS::Events::Rule":
				svc = "events.amazonaws.com"
				if m, err := s.read(ctx, other); err == nil {
					for _, t := range asList(m["Targets"]) {
						if tm, ok := t.(map[string]any); ok {
							targets = append(targets, scalar(tm["Arn"]))
						}
					}
				}
			case "AWS::CloudWatch::Alarm":
				svc = "cloudwatch.amazonaws.com"
				if m, err := s.read(ctx, other); err == nil {
					targets = strings_(m["AlarmActions"])
				}
			default:
				continue
			}
			aimed := false
			for _, t := range targets {
				aimed = aimed || topics[t]
			}
			if !aimed {
				continue
			}
			arn, err := s.attr(other, "Arn")
			if err != nil {
				rep.problem("%s: %v", id, err)
				continue
			}
			ok := false
			for _, p := range sourceArns[svc] {
				ok = ok || globMatch(p, arn)
			}
			if !ok {
				rep.problem("%s does not let %s publish for %s (%s); its %s source ARNs: %v", id, svc, other, arn, svc, sourceArns[svc])
			}
		}
	}
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return nil
}

func globMatch(pattern, s string) bool {
	re := "^" + strings.ReplaceAll(strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*"), `\?`, ".") + "$"
	ok, _ := regexp.MatchString(re, s)
	return ok
}

// MarshalIndent is a helper for logs.
func MarshalIndent(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
