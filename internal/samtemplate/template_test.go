package samtemplate

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// root is the repository root, two levels above this package.
const root = "../.."

// starOnly lists the only actions that may be allowed on Resource "*", each
// with the reason AWS gives no narrower resource for it.
var starOnly = map[string]string{
	"ec2:DescribeNetworkInterfaces": "the Lambda developer guide: it only works if allowed on all resources; Lambda calls it with the role of a VPC function",
	"ec2:DescribeSubnets":           "EC2 Describe* actions support no resource-level permissions; part of AWSLambdaVPCAccessExecutionRole for VPC functions",
	"secretsmanager:ListSecrets":    "the Secrets Manager authorization reference lists no resource type for ListSecrets; the auditor needs it",
}

// notRotation lists the directories of functions/ that hold a function
// Secrets Manager does not invoke, with its one sample event. Such a
// function may read no secret value and write no secret, and Secrets
// Manager may not invoke it.
var notRotation = map[string]string{
	"auditor": "scheduled.json", // the rotation auditor, run by an EventBridge schedule
}

// steps are the four steps of the rotation protocol, one sample event each.
var steps = []string{"createSecret", "setSecret", "testSecret", "finishSecret"}

// template is template.yaml decoded to maps, slices and strings, with the
// short-form intrinsic functions (!Ref, !Sub, !If...) turned into their long
// form ({"Ref": ...}, {"Fn::Sub": ...}) as CloudFormation reads them.
type template struct {
	globals   map[string]any // Globals.Function
	resources map[string]map[string]any
}

func loadTemplate(t *testing.T) *template {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatalf("read template.yaml: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse template.yaml: %v", err)
	}
	top, ok := decode(&doc).(map[string]any)
	if !ok {
		t.Fatal("template.yaml is not a mapping")
	}
	tpl := &template{resources: map[string]map[string]any{}}
	if g, ok := mapAt(top, "Globals", "Function"); ok {
		tpl.globals = g
	}
	res, ok := top["Resources"].(map[string]any)
	if !ok || len(res) == 0 {
		t.Fatal("template.yaml has no Resources")
	}
	for id, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			t.Fatalf("resource %s is not a mapping", id)
		}
		tpl.resources[id] = m
	}
	return tpl
}

// decode turns a YAML node into plain Go values. A custom tag such as !Sub
// becomes the one-key mapping {"Fn::Sub": value}; !Ref and !Condition keep
// their names; !GetAtt "A.B" becomes ["A", "B"].
func decode(n *yaml.Node) any {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return decode(n.Content[0])
	case yaml.AliasNode:
		return decode(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = decode(n.Content[i+1])
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			s = append(s, decode(c))
		}
		v = s
	default:
		v = n.Value
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v
	}
	name := strings.TrimPrefix(n.Tag, "!")
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: v}
	case "GetAtt":
		if s, ok := v.(string); ok {
			a, b, _ := strings.Cut(s, ".")
			v = []any{a, b}
		}
	}
	return map[string]any{"Fn::" + name: v}
}

func mapAt(m map[string]any, keys ...string) (map[string]any, bool) {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil, false
		}
		m = next
	}
	return m, true
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// branches returns the values v may take: both branches of an Fn::If, the
// elements of a list, nothing for AWS::NoValue.
func branches(v any) []any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			if args, ok := x["Fn::If"].([]any); ok && len(args) == 3 {
				return append(branches(args[1]), branches(args[2])...)
			}
			if x["Ref"] == "AWS::NoValue" {
				return nil
			}
		}
		return []any{x}
	case []any:
		var out []any
		for _, e := range x {
			out = append(out, branches(e)...)
		}
		return out
	default:
		return []any{x}
	}
}

func strs(v any) []string {
	var out []string
	for _, b := range branches(v) {
		if s, ok := b.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// property reads a function property, falling back to Globals.Function.
func (tpl *template) property(fn map[string]any, key string) any {
	if v, ok := props(fn)[key]; ok {
		return v
	}
	return tpl.globals[key]
}

func (tpl *template) functions() map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tpl.resources {
		if r["Type"] == "AWS::Serverless::Function" {
			out[id] = r
		}
	}
	return out
}

// rotationFunctions are the functions Secrets Manager invokes: all but
// those of notRotation, recognised by the directory their build target
// builds.
func (tpl *template) rotationFunctions(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for id, r := range tpl.functions() {
		if _, dir := makeBuild(t, id); notRotation[dir] == "" {
			out[id] = r
		}
	}
	return out
}

// statement is one IAM policy statement and where it is.
type statement struct {
	resource string // logical id of the resource that holds the policy
	kind     string // PolicyDocument or KeyPolicy
	m        map[string]any
}

// statements finds every policy document of a resource (any PolicyDocument
// or KeyPolicy in its properties, at any depth) and returns its statements,
// both branches of every Fn::If included.
func statements(id string, r map[string]any) []statement {
	var out []statement
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "PolicyDocument" || k == "KeyPolicy" {
					for _, doc := range branches(e) {
						d, _ := doc.(map[string]any)
						for _, s := range branches(d["Statement"]) {
							if m, ok := s.(map[string]any); ok {
								out = append(out, statement{id, k, m})
							}
						}
					}
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(props(r))
	return out
}

func (tpl *template) allStatements() []statement {
	var out []statement
	for id, r := range tpl.resources {
		out = append(out, statements(id, r)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].resource < out[j].resource })
	return out
}

func functionDirs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no directories under functions/")
	}
	return dirs
}

var buildPackage = regexp.MustCompile(`\./functions/([A-Za-z0-9_-]+)\s*$`)

// makeBuild returns what `make build-<id>` runs when sam build calls it,
// expanded by make itself (-n), and the functions/ directory it builds.
func makeBuild(t *testing.T, id string) (cmd, dir string) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not on PATH: sam build (BuildMethod makefile) needs it, and so does this test")
	}
	out, err := exec.Command("make", "-s", "-n", "-C", root, "build-"+id, "ARTIFACTS_DIR=/artifacts").CombinedOutput()
	if err != nil {
		t.Fatalf("Makefile has no working target build-%s (sam build runs it for BuildMethod makefile): %v\n%s", id, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "go build") {
			if m := buildPackage.FindStringSubmatch(line); m != nil {
				return line, m[1]
			}
		}
	}
	t.Fatalf("make build-%s runs no `go build ... ./functions/<name>`:\n%s", id, out)
	return "", ""
}

// TestEveryFunctionDeploys: each directory under functions/ is one function
// of the template, built by its Makefile target for linux/arm64 into
// $(ARTIFACTS_DIR)/bootstrap, for the provided.al2023 runtime.
func TestEveryFunctionDeploys(t *testing.T) {
	tpl := loadTemplate(t)
	fns := tpl.functions()
	byDir := map[string]string{}
	for id, fn := range fns {
		if bm, _ := mapAt(fn, "Metadata"); bm["BuildMethod"] != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod is %v, want makefile (so that the Makefile's flags apply)", id, bm["BuildMethod"])
		}
		if got := tpl.property(fn, "Runtime"); got != "provided.al2023" {
			t.Errorf("%s: Runtime %v, want provided.al2023", id, got)
		}
		if got := strs(tpl.property(fn, "Architectures")); !slices.Equal(got, []string{"arm64"}) {
			t.Errorf("%s: Architectures %v, want [arm64]", id, got)
		}
		if got := tpl.property(fn, "Handler"); got != "bootstrap" {
			t.Errorf("%s: Handler %v, want bootstrap", id, got)
		}
		cmd, dir := makeBuild(t, id)
		for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "-tags lambda.norpc", "-trimpath", `-ldflags "-s -w"`, "-o /artifacts/bootstrap"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("make build-%s: %q lacks %s", id, cmd, want)
			}
		}
		if other, dup := byDir[dir]; dup {
			t.Errorf("functions/%s is built by both %s and %s", dir, other, id)
		}
		byDir[dir] = id
	}
	for _, dir := range functionDirs(t) {
		if _, ok := byDir[dir]; !ok {
			t.Errorf("functions/%s has no function in template.yaml whose build-<LogicalId> target builds it", dir)
		}
		delete(byDir, dir)
	}
	for dir, id := range byDir {
		t.Errorf("%s builds ./functions/%s, which does not exist", id, dir)
	}
}

// TestSampleEvents: one sample invocation per step for every function.
func TestSampleEvents(t *testing.T) {
	for _, dir := range functionDirs(t) {
		if event, ok := notRotation[dir]; ok {
			var v map[string]any
			b, err := os.ReadFile(filepath.Join(root, "events", dir, event))
			if err != nil || json.Unmarshal(b, &v) != nil {
				t.Errorf("functions/%s: sample event %s: %v", dir, event, err)
			}
			continue
		}
		for _, step := range steps {
			path := filepath.Join(root, "events", dir, step+".json")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("functions/%s: %v", dir, err)
				continue
			}
			var ev struct{ Step, SecretId, ClientRequestToken string }
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			if ev.Step != step || ev.SecretId == "" || ev.ClientRequestToken == "" {
				t.Errorf("%s: want Step %q and a SecretId and ClientRequestToken, got %+v", path, step, ev)
			}
		}
	}
}

// TestNoStarResources: no policy allows an action on "*" unless AWS offers
// nothing narrower for it (starOnly). A KMS key policy is the exception by
// construction: there "*" names the key itself.
func TestNoStarResources(t *testing.T) {
	tpl := loadTemplate(t)
	all := tpl.allStatements()
	if len(all) < 20 {
		t.Fatalf("found only %d policy statements in template.yaml: is the policy walk broken?", len(all))
	}
	for _, s := range all {
		if _, ok := s.m["NotResource"]; ok {
			t.Errorf("%s: statement %v uses NotResource", s.resource, s.m["Sid"])
		}
		if _, ok := s.m["NotAction"]; ok {
			t.Errorf("%s: statement %v uses NotAction", s.resource, s.m["Sid"])
		}
		for _, a := range strs(s.m["Action"]) {
			if strings.Contains(a, "*") && s.kind != "KeyPolicy" {
				t.Errorf("%s: statement %v allows the wildcard action %s", s.resource, s.m["Sid"], a)
			}
		}
		if s.m["Effect"] != "Allow" || s.kind == "KeyPolicy" || !slices.Contains(strs(s.m["Resource"]), "*") {
			continue
		}
		for _, a := range strs(s.m["Action"]) {
			if _, ok := starOnly[a]; !ok {
				t.Errorf(`%s: statement %v allows %s on Resource "*"; name the resources, or add %s to starOnly with the reason AWS allows nothing narrower`, s.resource, s.m["Sid"], a, a)
			}
		}
	}
	for _, s := range all {
		if slices.Contains(strs(s.m["Action"]), "secretsmanager:GetRandomPassword") {
			t.Errorf("%s: allows secretsmanager:GetRandomPassword, which no function calls (passwords come from crypto/rand)", s.resource)
		}
	}
}

// TestRolesAreOwnFunctions: each function has its own role (no SAM
// Policies, which would attach AWSLambdaBasicExecutionRole and its "*"),
// writes only to secrets whose rotation function it is, and may be invoked
// by Secrets Manager from this account only.
func TestRolesAreOwnFunctions(t *testing.T) {
	tpl := loadTemplate(t)
	writes := []string{"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"}
	roles := map[string]string{}
	for id, fn := range tpl.functions() {
		p := props(fn)
		if _, dir := makeBuild(t, id); notRotation[dir] != "" {
			checkNotRotation(t, tpl, id)
			continue
		}
		if _, ok := p["Policies"]; ok {
			t.Errorf("%s: has SAM Policies; give it a Role of its own instead", id)
		}
		getAtt, _ := p["Role"].(map[string]any)
		ref, _ := getAtt["Fn::GetAtt"].([]any)
		if len(ref) != 2 || ref[1] != "Arn" {
			t.Errorf("%s: Role is %v, want !GetAtt <Role>.Arn", id, p["Role"])
			continue
		}
		roleID := ref[0].(string)
		if other, ok := roles[roleID]; ok {
			t.Errorf("%s and %s share the role %s", id, other, roleID)
		}
		roles[roleID] = id
		name, _ := p["FunctionName"].(map[string]any)["Fn::Sub"].(string)
		if name == "" {
			t.Errorf("%s: FunctionName must be a !Sub so that its role can name its ARN without a circular reference", id)
			continue
		}
		wantArn := "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:" + name

		var writers int
		for _, s := range statements(roleID, tpl.resources[roleID]) {
			acts := strs(s.m["Action"])
			if !slices.ContainsFunc(acts, func(a string) bool { return slices.Contains(writes, a) }) {
				continue
			}
			writers++
			cond, _ := mapAt(s.m, "Condition", "StringEquals")
			got, _ := cond["secretsmanager:resource/AllowRotationLambdaArn"].(map[string]any)
			if got["Fn::Sub"] != wantArn {
				t.Errorf("%s: statement %v writes secrets without the condition secretsmanager:resource/AllowRotationLambdaArn = %s (got %v)", roleID, s.m["Sid"], wantArn, got)
			}
		}
		if writers == 0 {
			t.Errorf("%s: role %s cannot write any secret", id, roleID)
		}

		var permitted bool
		for pid, r := range tpl.resources {
			pp := props(r)
			if r["Type"] != "AWS::Lambda::Permission" || pp["Principal"] != "secretsmanager.amazonaws.com" {
				continue
			}
			target, _ := pp["FunctionName"].(map[string]any)
			ga, _ := target["Fn::GetAtt"].([]any)
			if target["Ref"] != id && (len(ga) == 0 || ga[0] != id) {
				continue
			}
			permitted = true
			if sa, _ := pp["SourceAccount"].(map[string]any); sa["Ref"] != "AWS::AccountId" {
				t.Errorf("%s: lets Secrets Manager invoke %s without SourceAccount = AWS::AccountId", pid, id)
			}
		}
		if !permitted {
			t.Errorf("%s: no AWS::Lambda::Permission lets secretsmanager.amazonaws.com invoke it", id)
		}
	}
}

// TestTimeoutsCoverRetries: a function that retries for TEST_TIMEOUT must
// be allowed to run longer than that.
func TestTimeoutsCoverRetries(t *testing.T) {
	tpl := loadTemplate(t)
	for id, fn := range tpl.functions() {
		vars, _ := mapAt(props(fn), "Environment", "Variables")
		s, ok := vars["TEST_TIMEOUT"].(string)
		if !ok {
			continue
		}
		retry, err := time.ParseDuration(s)
		if err != nil {
			t.Errorf("%s: TEST_TIMEOUT %q: %v", id, s, err)
			continue
		}
		timeout, err := strconv.Atoi(fmt.Sprint(tpl.property(fn, "Timeout")))
		if err != nil || time.Duration(timeout)*time.Second < retry+10*time.Second {
			t.Errorf("%s: Timeout %v s leaves no room after TEST_TIMEOUT %s", id, tpl.property(fn, "Timeout"), retry)
		}
	}
}

// checkNotRotation: a function that is not a rotation function has a role
// of its own that reads no value and writes no secret, runs on a schedule,
// and Secrets Manager may not invoke it.
func checkNotRotation(t *testing.T, tpl *template, id string) {
	t.Helper()
	p := props(tpl.resources[id])
	getAtt, _ := p["Role"].(map[string]any)
	ref, _ := getAtt["Fn::GetAtt"].([]any)
	if len(ref) != 2 {
		t.Errorf("%s: Role is %v, want !GetAtt <Role>.Arn", id, p["Role"])
		return
	}
	roleID, _ := ref[0].(string)
	for _, st := range statements(roleID, tpl.resources[roleID]) {
		for _, a := range strs(st.m["Action"]) {
			if strings.HasPrefix(a, "secretsmanager:") && a != "secretsmanager:ListSecrets" && a != "secretsmanager:ListSecretVersionIds" && a != "secretsmanager:DescribeSecret" {
				t.Errorf("%s: role %s allows %s; it may read metadata only", id, roleID, a)
			}
		}
	}
	events, _ := p["Events"].(map[string]any)
	scheduled := false
	for _, e := range events {
		if m, _ := e.(map[string]any); m["Type"] == "Schedule" || m["Type"] == "ScheduleV2" {
			scheduled = true
		}
	}
	if !scheduled {
		t.Errorf("%s: no Schedule event", id)
	}
	for pid, r := range tpl.resources {
		pp := props(r)
		target, _ := pp["FunctionName"].(map[string]any)
		ga, _ := target["Fn::GetAtt"].([]any)
		if r["Type"] == "AWS::Lambda::Permission" && pp["Principal"] == "secretsmanager.amazonaws.com" && (target["Ref"] == id || (len(ga) > 0 && ga[0] == id)) {
			t.Errorf("%s: lets Secrets Manager invoke %s, which is not a rotation function", pid, id)
		}
	}
}
