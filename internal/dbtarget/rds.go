package dbtarget

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
)

// RDSAPI is the part of the RDS API that discovery calls.
type RDSAPI interface {
	DescribeDBInstances(context.Context, *rds.DescribeDBInstancesInput, ...func(*rds.Options)) (*rds.DescribeDBInstancesOutput, error)
	DescribeDBClusters(context.Context, *rds.DescribeDBClustersInput, ...func(*rds.Options)) (*rds.DescribeDBClustersOutput, error)
}

// RDSEndpoint is what discovery finds.
type RDSEndpoint struct {
	ID     string
	Engine string
	Host   string
	Port   int
}

func (e RDSEndpoint) String() string { return fmt.Sprintf("%s:%d", e.Host, e.Port) }

// rdsEndpoint looks up an instance or, when no instance is named, a cluster
// (its writer endpoint). Both accept a name or an ARN.
func (e *engine) rdsEndpoint(ctx context.Context, instance, cluster string) (RDSEndpoint, error) {
	if e.rds == nil {
		return RDSEndpoint{}, errors.New("the secret needs RDS discovery but the function has no RDS client")
	}
	if instance != "" {
		out, err := e.rds.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(instance)})
		if err != nil {
			return RDSEndpoint{}, fmt.Errorf("describe RDS instance %s: %w", instance, err)
		}
		if len(out.DBInstances) != 1 || out.DBInstances[0].Endpoint == nil || out.DBInstances[0].Endpoint.Address == nil {
			return RDSEndpoint{}, fmt.Errorf("RDS instance %s has no endpoint (is it available?)", instance)
		}
		db := out.DBInstances[0]
		return RDSEndpoint{
			ID:     instance,
			Engine: normalizeEngine(aws.ToString(db.Engine)),
			Host:   aws.ToString(db.Endpoint.Address),
			Port:   int(aws.ToInt32(db.Endpoint.Port)),
		}, nil
	}
	if cluster == "" {
		return RDSEndpoint{}, errors.New("no RDS instance or cluster named")
	}
	out, err := e.rds.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(cluster)})
	if err != nil {
		return RDSEndpoint{}, fmt.Errorf("describe RDS cluster %s: %w", cluster, err)
	}
	if len(out.DBClusters) != 1 || out.DBClusters[0].Endpoint == nil {
		return RDSEndpoint{}, fmt.Errorf("RDS cluster %s has no writer endpoint", cluster)
	}
	c := out.DBClusters[0]
	return RDSEndpoint{
		ID:     cluster,
		Engine: normalizeEngine(aws.ToString(c.Engine)),
		Host:   aws.ToString(c.Endpoint),
		Port:   int(aws.ToInt32(c.Port)),
	}, nil
}

// normalizeEngine maps the RDS engine names onto the secret's.
func normalizeEngine(e string) string {
	switch e {
	case "postgres", "aurora-postgresql":
		return "postgres"
	case "mysql", "aurora-mysql", "aurora":
		return "mysql"
	case "mariadb":
		return "mariadb"
	}
	return e
}
