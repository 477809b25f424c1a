package aws

// costExplorerServices maps Cost Explorer's SERVICE values, display names
// such as "Amazon Elastic Compute Cloud - Compute", to the service values
// of the Sustainability API, AWS's product codes such as "AmazonEC2" (the
// line_item_product_code of Cost and Usage Reports and Data Exports),
// so that a cost record's key is the key of the emissions it estimates.
//
// Several Cost Explorer services can share a product code: EC2's
// instances ("... - Compute") and its volumes, snapshots, NAT gateways
// and data transfer ("EC2 - Other") are both AmazonEC2, and their cost is
// added up. A service missing here keeps its Cost Explorer name: its cost
// is still served, under a key that matches no emissions, and the
// estimate falls back to a coarser key for it. Charges that carry no
// emissions (tax, support, marketplace fees) are left out by the query or
// kept under their own names.
var costExplorerServices = map[string]string{
	"Amazon Elastic Compute Cloud - Compute":          "AmazonEC2",
	"EC2 - Other":                                     "AmazonEC2",
	"Amazon Elastic Container Service for Kubernetes": "AmazonEKS",
	"Amazon Elastic Container Service":                "AmazonECS",
	"Amazon EC2 Container Registry (ECR)":             "AmazonECR",
	"Amazon Relational Database Service":              "AmazonRDS",
	"Amazon Simple Storage Service":                   "AmazonS3",
	"Amazon Glacier":                                  "AmazonGlacier",
	"Amazon DynamoDB":                                 "AmazonDynamoDB",
	"AWS Lambda":                                      "AWSLambda",
	"Amazon CloudFront":                               "AmazonCloudFront",
	"Amazon Route 53":                                 "AmazonRoute53",
	"Amazon Virtual Private Cloud":                    "AmazonVPC",
	"Amazon Elastic Load Balancing":                   "AWSELB",
	"Amazon Elastic File System":                      "AmazonEFS",
	"Amazon FSx":                                      "AmazonFSx",
	"Amazon ElastiCache":                              "AmazonElastiCache",
	"Amazon Redshift":                                 "AmazonRedshift",
	"Amazon OpenSearch Service":                       "AmazonES",
	"Amazon Elastic MapReduce":                        "ElasticMapReduce",
	"Amazon Kinesis":                                  "AmazonKinesis",
	"Amazon Kinesis Firehose":                         "AmazonKinesisFirehose",
	"Amazon Managed Streaming for Apache Kafka":       "AmazonMSK",
	"Amazon Simple Queue Service":                     "AWSQueueService",
	"Amazon Simple Notification Service":              "AmazonSNS",
	"Amazon Simple Email Service":                     "AmazonSES",
	"Amazon API Gateway":                              "AmazonApiGateway",
	"AmazonCloudWatch":                                "AmazonCloudWatch",
	"AWS CloudTrail":                                  "AWSCloudTrail",
	"AWS Config":                                      "AWSConfig",
	"Amazon SageMaker":                                "AmazonSageMaker",
	"Amazon Athena":                                   "AmazonAthena",
	"AWS Glue":                                        "AWSGlue",
	"AWS Backup":                                      "AWSBackup",
	"AWS Key Management Service":                      "awskms",
	"AWS Secrets Manager":                             "AWSSecretsManager",
	"Amazon Lightsail":                                "AmazonLightsail",
	"Amazon WorkSpaces":                               "AmazonWorkSpaces",
	"Amazon DocumentDB (with MongoDB compatibility)":  "AmazonDocDB",
	"Amazon Neptune":                                  "AmazonNeptune",
	"Amazon MQ":                                       "AmazonMQ",
	"AWS Data Transfer":                               "AWSDataTransfer",
}

// serviceOf returns the Sustainability API's service value of a Cost
// Explorer service: its product code, or the name itself when the table
// has none.
func serviceOf(costExplorerName string) string {
	if code, ok := costExplorerServices[costExplorerName]; ok {
		return code
	}
	return costExplorerName
}
