package scaleway

import (
	"net/http/httptest"
	"testing"
)

// TestProductCategory: the invoice's product names map to the
// footprint's product categories, whatever their case and punctuation;
// other products keep their name in snake case; none is Unknown.
func TestProductCategory(t *testing.T) {
	for _, tt := range []struct{ product, want string }{
		{"Instances", "instances"},
		{"Elastic Metal", "elastic_metal"},
		{"Block Storage", "block_storage"},
		{"Object Storage", "object_storage"},
		{"Load Balancer", "load_balancer"},
		{"Load Balancers", "load_balancer"},
		{"Kubernetes Kapsule", "kubernetes"},
		{"Kubernetes - Kosmos", "kubernetes"},
		{"Managed Database for PostgreSQL and MySQL", "managed_relational_databases"},
		{"Managed Database for Redis™", "managed_redis"},
		{"Managed MongoDB®", "managed_mongodb"},
		{"Apple Silicon", "apple_silicon"},
		{"Mac mini", "apple_silicon"},
		{"Generative APIs", "generative_apis"},
		{"Managed Inference", "managed_inference"},
		{"Serverless Functions", "serverless_functions"},
		{"Serverless Containers", "serverless_containers"},
		{"Serverless Jobs", "serverless_jobs"},
		{"Dedibox", "dedibox"},
		{"Cockpit", "cockpit"},
		{"  Transactional Email (TEM) ", "transactional_email_tem"},
		{"", Unknown},
		{"™", Unknown},
	} {
		if got := productCategory(tt.product); got != tt.want {
			t.Errorf("productCategory(%q) = %q, want %q", tt.product, got, tt.want)
		}
	}
}

func TestEndpointOfConsumptions(t *testing.T) {
	if got := endpointOf(httptest.NewRequest("GET", DefaultAPIURL+"/billing/v2beta1/consumptions?billing_period=2025-01", nil)); got != EndpointConsumptions {
		t.Errorf("endpoint %q", got)
	}
}
