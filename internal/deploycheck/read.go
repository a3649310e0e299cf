package deploycheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// Clients are the API clients the check reads with, all pointed at the
// emulator by the SDK's standard configuration (AWS_ENDPOINT_URL).
type Clients struct {
	CFN    *cloudformation.Client
	S3     *s3.Client
	Lambda *lambda.Client
	IAM    *iam.Client
	Logs   *cloudwatchlogs.Client
	CW     *cloudwatch.Client
	Events *eventbridge.Client
	SNS    *sns.Client
	SM     *secretsmanager.Client
	KMS    *kms.Client
}

// NewClients returns the clients for cfg.
func NewClients(cfg aws.Config) *Clients {
	return &Clients{
		CFN:    cloudformation.NewFromConfig(cfg),
		S3:     s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }),
		Lambda: lambda.NewFromConfig(cfg),
		IAM:    iam.NewFromConfig(cfg),
		Logs:   cloudwatchlogs.NewFromConfig(cfg),
		CW:     cloudwatch.NewFromConfig(cfg),
		Events: eventbridge.NewFromConfig(cfg),
		SNS:    sns.NewFromConfig(cfg),
		SM:     secretsmanager.NewFromConfig(cfg),
		KMS:    kms.NewFromConfig(cfg),
	}
}

// reader reads one deployed resource and returns it with CloudFormation's
// property names, so that it compares with the template's properties.
// props are the resource's resolved properties (some readers need them to
// find the resource).
type reader func(ctx context.Context, c *Clients, physical string, props map[string]any) (map[string]any, error)

// readers by resource type. A type the template uses that is neither here
// nor in notServed fails the check, so a new kind of resource gets a reader.
var readers = map[string]reader{
	"AWS::Lambda::Function":                 readFunction,
	"AWS::IAM::Role":                        readRole,
	"AWS::IAM::ManagedPolicy":               readManagedPolicy,
	"AWS::IAM::User":                        readUser,
	"AWS::Logs::LogGroup":                   readLogGroup,
	"AWS::CloudWatch::Alarm":                readAlarm,
	"AWS::Events::Rule":                     readRule,
	"AWS::SNS::Topic":                       readTopic,
	"AWS::SNS::TopicPolicy":                 readTopicPolicy,
	"AWS::SNS::Subscription":                readSubscription,
	"AWS::Lambda::Permission":               readPermission,
	"AWS::SecretsManager::Secret":           readSecret,
	"AWS::SecretsManager::RotationSchedule": readRotationSchedule,
	"AWS::KMS::Key":                         readKey,
}

// notServed are resource types that LocalStack 4.14's CloudFormation
// accepts without making anything to read back.
var notServed = map[string]string{
	"AWS::Logs::QueryDefinition": "LocalStack 4.14 does not implement Logs query definitions (DescribeQueryDefinitions: not implemented; physical id \"unknown\")",
	// Its wiring (RotationLambdaARN) is still checked on the resolved template.
	"AWS::SecretsManager::RotationSchedule": "LocalStack 4.14's RotationSchedule provider records the resource and calls nothing (no RotateSecret): DescribeSecret shows no rotation",
	"AWS::CloudWatch::Dashboard":            "LocalStack 4.14's CloudFormation records the dashboard without making it (physical id \"unknown\"; GetDashboard finds none)",
}

// notKept are properties that LocalStack 4.14 accepts and drops, so that
// reading them back says nothing about the template.
var notKept = map[string]string{
	"AWS::Lambda::Permission.SourceAccount":            "LocalStack 4.14 leaves the AWS:SourceAccount condition out of the function policy",
	"AWS::Logs::LogGroup.RetentionInDays":              "LocalStack 4.14's LogGroup provider calls CreateLogGroup with the name only",
	"AWS::Logs::LogGroup.KmsKeyId":                     "LocalStack 4.14's LogGroup provider calls CreateLogGroup with the name only",
	"AWS::IAM::ManagedPolicy.Description":              "LocalStack 4.14's ManagedPolicy provider drops it",
	"AWS::SecretsManager::Secret.GenerateSecretString": "a generated value, not a setting",
	"AWS::SecretsManager::Secret.SecretString":         "the value itself, not compared",
	"AWS::Lambda::Function.Code":                       "the package, uploaded by sam package",
	"AWS::Lambda::Function.Tags":                       "SAM's own tag",
	"AWS::SNS::TopicPolicy.Topics":                     "the topics are where the policy is read",
}

func readFunction(ctx context.Context, c *Clients, physical string, _ map[string]any) (map[string]any, error) {
	out, err := c.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(physical)})
	if err != nil {
		return nil, err
	}
	p, err := plain(out.Configuration)
	if err != nil {
		return nil, err
	}
	m := p.(map[string]any)
	if env, ok := m["Environment"].(map[string]any); ok {
		delete(env, "Error")
	}
	if vpc, ok := m["VpcConfig"].(map[string]any); ok {
		delete(vpc, "VpcId")
		delete(vpc, "Ipv6AllowedForDualStack")
	}
	m["Arn"] = m["FunctionArn"]
	return pick(m, "FunctionName", "Description", "Role", "Runtime", "Handler", "MemorySize", "Timeout",
		"Architectures", "Environment", "LoggingConfig", "VpcConfig", "Arn", "State"), nil
}

func policyDoc(s string) (any, error) {
	if d, err := url.QueryUnescape(s); err == nil {
		s = d
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("policy document %q: %w", s, err)
	}
	return v, nil
}

func readRole(ctx context.Context, c *Clients, physical string, _ map[string]any) (map[string]any, error) {
	role, err := c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(physical)})
	if err != nil {
		return nil, err
	}
	trust, err := policyDoc(aws.ToString(role.Role.AssumeRolePolicyDocument))
	if err != nil {
		return nil, err
	}
	names, err := c.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(physical)})
	if err != nil {
		return nil, err
	}
	policies := []any{}
	for _, n := range names.PolicyNames {
		p, err := c.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(physical), PolicyName: aws.String(n)})
		if err != nil {
			return nil, err
		}
		doc, err := policyDoc(aws.ToString(p.PolicyDocument))
		if err != nil {
			return nil, err
		}
		policies = append(policies, map[string]any{"PolicyName": n, "PolicyDocument": doc})
	}
	att, err := c.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(physical)})
	if err != nil {
		return nil, err
	}
	managed := []any{}
	for _, a := range att.AttachedPolicies {
		managed = append(managed, aws.ToString(a.PolicyArn))
	}
	return map[string]any{
		"Arn":                      aws.ToString(role.Role.Arn),
		"Description":              aws.ToString(role.Role.Description),
		"AssumeRolePolicyDocument": trust,
		"Policies":                 policies,
		"ManagedPolicyArns":        managed,
	}, nil
}

func readManagedPolicy(ctx context.Context, c *Clients, physical string, _ map[string]any) (map[string]any, error) {
	p, err := c.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(physical)})
	if err != nil {
		return nil, err
	}
	v, err := c.IAM.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(physical), VersionId: p.Policy.DefaultVersionId})
	if err != nil {
		return nil, err
	}
	doc, err := policyDoc(aws.ToString(v.PolicyVersion.Document))
	if err != nil {
		return nil, err
	}
	return map[string]any{"Arn": physical, "Description": aws.ToString(p.Policy.Description), "PolicyDocument": doc}, nil
}

func readUser(ctx context.Context, c *Clients, physical string, _ map[string]any) (map[string]any, error) {
	u, err := c.IAM.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(physical)})
	if err != nil {
		return nil, err
	}
	tags, err := c.IAM.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String(physical)})
	if err != nil {
		return nil, fmt.Errorf("tags of user %s: %w", physical, err)
	}
	out := map[string]any{"Arn": aws.ToString(u.User.Arn), "Path": aws.ToString(u.User.Path), "UserName": aws.ToString(u.User.UserName)}
	if len(tags.Tags) > 0 {
		list := make([]any, len(tags.Tags))
		for i, t := range tags.Tags {
			list[i] = map[string]any{"Key": aws.ToString(t.Key), "Value": aws.ToString(t.Value)}
		}
		out["Tags"] = list
	}
	return out, nil
}

func readLogGroup(ctx context.Context, c *Clients, physical string, _ map[string]any) (map[string]any, error) {
	out, err := c.Logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(physical)})
	if err != nil {
		return nil, err
	}
	for _, g := range out.LogGroups {
		if aws.ToString(g.LogGroupName) == physical {
			m := map[string]any{"LogGroupName": physical, "Arn": aws.ToString(g.Arn), "KmsKeyId": aws.ToString(g.KmsKeyId)}
			if g.RetentionInDays != nil {
				m["RetentionInDays"] = float64(*g.RetentionInDays)
			} else {
				m["RetentionInDays"] = nil
			}
			return m, nil
		}
	}
	return nil, fmt.Errorf("log group %s not found", physical)
}

func readAlarm(ctx context.Context, c *Clients, physical string, _ map[string]any) (map[string]any, error) {
	out, err := c.CW.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{physical}})
	if err != nil {
		return nil, err
	}
	if len(out.MetricAlarms) != 1 {
		return nil, fmt.Errorf("alarm %s: %d found", physical, len(out.MetricAlarms))
	}
	p, err := plain(out.MetricAlarms[0])
	if err != nil {
		return nil, err
	}
	m := p.(map[string]any)
	m["Arn"] = m["AlarmArn"]
	return pick(m, "AlarmName", "AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions", "InsufficientDataActions",
		"ComparisonOperator", "Threshold", "EvaluationPeriods", "DatapointsToAlarm", "TreatMissingData",
		"Metrics", "MetricName", "Namespace", "Dimensions", "Statistic", "ExtendedStatistic", "Period", "Unit", "Arn"), nil
}

func readRule(ctx context.Context, c *Clients, physical string, _ map[string]any) (map[string]any, error) {
	name := physical
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	r, err := c.Events.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(name)})
	if err != nil {
		return nil, err
	}
	var pattern any
	if s := aws.ToString(r.EventPattern); s != "" {
		if err := json.Unmarshal([]byte(s), &pattern); err != nil {
			return nil, fmt.Errorf("rule %s: event pattern: %w", name, err)
		}
	}
	ts, err := c.Events.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String(name)})
	if err != nil {
		return nil, err
	}
	targets := []any{}
	for _, t := range ts.Targets {
		targets = append(targets, map[string]any{"Id": aws.ToString(t.Id), "Arn": aws.ToString(t.Arn)})
	}
	return map[string]any{
		"Name": aws.ToString(r.Name), "Arn": aws.ToString(r.Arn), "Description": aws.ToString(r.Description),
		"State": string(r.State), "EventPattern": pattern, "Targets": targets,
		"ScheduleExpression": aws.ToString(r.ScheduleExpression), "EventPatternJSON": aws.ToString(r.EventPattern),
	}, nil
}

func topicAttributes(ctx context.Context, c *Clients, arn string) (map[string]string, error) {
	out, err := c.SNS.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
	if err != nil {
		return nil, err
	}
	return out.Attributes, nil
}

func readTopic(ctx context.Context, c *Clients, physical string, _ map[string]any) (map[string]any, error) {
	a, err := topicAttributes(ctx, c, physical)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Arn": physical, "DisplayName": a["DisplayName"], "KmsMasterKeyId": a["KmsMasterKeyId"]}, nil
}

func readTopicPolicy(ctx context.Context, c *Clients, _ string, props map[string]any) (map[string]any, error) {
	topics, _ := props["Topics"].([]any)
	if len(topics) == 0 {
		return nil, fmt.Errorf("topic policy without Topics")
	}
	var doc any
	for i, t := range topics {
		a, err := topicAttributes(ctx, c, scalar(t))
		if err != nil {
			return nil, err
		}
		d, err := policyDoc(a["Policy"])
		if err != nil {
			return nil, err
		}
		if i == 0 {
			doc = d
		} else if len(diff("", doc, d)) > 0 {
			return nil, fmt.Errorf("topic %s has another policy than %s", t, topics[0])
		}
	}
	return map[string]any{"PolicyDocument": doc}, nil
}

func readSubscription(ctx context.Context, c *Clients, physical string, props map[string]any) (map[string]any, error) {
	topic := scalar(props["TopicArn"])
	out, err := c.SNS.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)})
	if err != nil {
		return nil, err
	}
	for _, s := range out.Subscriptions {
		if aws.ToString(s.SubscriptionArn) == physical ||
			(aws.ToString(s.Endpoint) == scalar(props["Endpoint"]) && aws.ToString(s.Protocol) == scalar(props["Protocol"])) {
			return map[string]any{"TopicArn": aws.ToString(s.TopicArn), "Protocol": aws.ToString(s.Protocol), "Endpoint": aws.ToString(s.Endpoint)}, nil
		}
	}
	return nil, fmt.Errorf("no subscription %s on topic %s", physical, topic)
}

func readPermission(ctx context.Context, c *Clients, physical string, props map[string]any) (map[string]any, error) {
	fn := scalar(props["FunctionName"])
	out, err := c.Lambda.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String(fn)})
	if err != nil {
		return nil, fmt.Errorf("policy of function %s: %w", fn, err)
	}
	var doc struct {
		Statement []map[string]any
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &doc); err != nil {
		return nil, err
	}
	for _, st := range doc.Statement {
		if st["Sid"] != physical {
			continue
		}
		principal := st["Principal"]
		if m, ok := principal.(map[string]any); ok {
			if s, ok := m["Service"]; ok {
				principal = s
			} else if s, ok := m["AWS"]; ok {
				principal = s
			}
		}
		got := map[string]any{"FunctionName": st["Resource"], "Action": st["Action"], "Principal": principal}
		// A permission may name its function by name (SAM's schedule
		// permission does): the policy names it by ARN.
		if res, _ := st["Resource"].(string); !strings.HasPrefix(fn, "arn:") && strings.HasSuffix(res, ":function:"+fn) {
			got["FunctionName"] = fn
		}
		if cond, ok := st["Condition"].(map[string]any); ok {
			for _, op := range []string{"ArnLike", "ArnEquals", "StringLike", "StringEquals"} {
				if m, ok := cond[op].(map[string]any); ok {
					if v, ok := m["AWS:SourceArn"]; ok {
						got["SourceArn"] = v
					}
				}
			}
		}
		return got, nil
	}
	return nil, fmt.Errorf("function %s has no policy statement %s", fn, physical)
}

func readSecret(ctx context.Context, c *Clients, physical string, _ map[string]any) (map[string]any, error) {
	s, err := c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(physical)})
	if err != nil {
		return nil, err
	}
	return map[string]any{"Arn": aws.ToString(s.ARN), "Name": aws.ToString(s.Name), "Description": aws.ToString(s.Description), "KmsKeyId": aws.ToString(s.KmsKeyId)}, nil
}

func readRotationSchedule(ctx context.Context, c *Clients, _ string, props map[string]any) (map[string]any, error) {
	id := scalar(props["SecretId"])
	s, err := c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		return nil, err
	}
	rules := map[string]any{}
	if s.RotationRules != nil {
		rules["ScheduleExpression"] = aws.ToString(s.RotationRules.ScheduleExpression)
		rules["Duration"] = aws.ToString(s.RotationRules.Duration)
		if s.RotationRules.AutomaticallyAfterDays != nil {
			rules["AutomaticallyAfterDays"] = float64(*s.RotationRules.AutomaticallyAfterDays)
		}
	}
	return map[string]any{
		"SecretId": aws.ToString(s.ARN), "RotationLambdaARN": aws.ToString(s.RotationLambdaARN),
		"RotationRules": rules, "RotationEnabled": aws.ToBool(s.RotationEnabled),
	}, nil
}

func readKey(ctx context.Context, c *Clients, physical string, _ map[string]any) (map[string]any, error) {
	k, err := c.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(physical)})
	if err != nil {
		return nil, err
	}
	rot, err := c.KMS.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(physical)})
	if err != nil {
		return nil, err
	}
	pol, err := c.KMS.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(physical)})
	if err != nil {
		return nil, err
	}
	doc, err := policyDoc(aws.ToString(pol.Policy))
	if err != nil {
		return nil, err
	}
	m := map[string]any{
		"KeyPolicy": doc, "Arn": aws.ToString(k.KeyMetadata.Arn), "Description": aws.ToString(k.KeyMetadata.Description),
		"KeySpec": string(k.KeyMetadata.KeySpec), "KeyUsage": string(k.KeyMetadata.KeyUsage),
		"Enabled": k.KeyMetadata.Enabled, "EnableKeyRotation": rot.KeyRotationEnabled,
	}
	if rot.RotationPeriodInDays != nil {
		m["RotationPeriodInDays"] = float64(*rot.RotationPeriodInDays)
	}
	return m, nil
}

func pick(m map[string]any, keys ...string) map[string]any {
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}
