package gcpfake

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery/datatransfer/apiv1/datatransferpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// CarbonFootprintDataSource is the Data Transfer Service data source id of
// the Carbon Footprint export, as Google documents it. It is the fake's
// own copy, not the gcp client's, so that a client asking for a wrong id
// misses the configs the fake holds instead of agreeing with it.
const CarbonFootprintDataSource = "61cede5a-0000-2440-ad42-883d24f8f7b8"

// TransferServer is a fake BigQuery Data Transfer Service REST API: the
// three methods the setup command uses (transferConfigs.list, .create and
// .startManualRuns). It is safe for concurrent use.
type TransferServer struct {
	mu       sync.Mutex
	seq      int
	configs  []*datatransferpb.TransferConfig
	runs     []*datatransferpb.StartManualTransferRunsRequest
	numbers  map[string]string // project id -> number
	requests fakehttp.Counter[string]
	faults   fakehttp.Faults[faultKey]
}

// Transfer endpoint names for Requests and Fault.Endpoint.
const (
	EndpointTransferList   = "transferConfigs.list"
	EndpointTransferCreate = "transferConfigs.create"
	EndpointTransferRuns   = "transferConfigs.startManualRuns"
)

// NewTransferServer returns a fake holding the given transfer configs.
func NewTransferServer(configs ...*datatransferpb.TransferConfig) *TransferServer {
	s := &TransferServer{numbers: make(map[string]string)}
	for _, c := range configs {
		s.configs = append(s.configs, proto.CloneOf(c))
	}
	return s
}

// SetProjectNumber makes the fake name configs of project id by its
// number, as the Data Transfer Service does ("projects/123456/..."), and
// find them when asked by id.
func (s *TransferServer) SetProjectNumber(id, number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.numbers[id] = number
}

// Configs returns the transfer configs, oldest first.
func (s *TransferServer) Configs() []*datatransferpb.TransferConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*datatransferpb.TransferConfig, len(s.configs))
	for i, c := range s.configs {
		out[i] = proto.CloneOf(c)
	}
	return out
}

// ManualRuns returns the startManualRuns requests received, oldest first.
func (s *TransferServer) ManualRuns() []*datatransferpb.StartManualTransferRunsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*datatransferpb.StartManualTransferRunsRequest, len(s.runs))
	for i, r := range s.runs {
		out[i] = proto.CloneOf(r)
	}
	return out
}

// Requests returns how many requests reached an endpoint; "" counts all.
func (s *TransferServer) Requests(endpoint string) int {
	if endpoint == "" {
		return s.requests.Total()
	}
	return s.requests.Get(endpoint)
}

// Inject queues f, as Server.Inject does; Kind is ignored, and the answer's
// Content-Type is always application/json.
func (s *TransferServer) Inject(f Fault) {
	f.queue(&s.faults, "application/json", true)
}

var (
	transferConfigsRoute = regexp.MustCompile(`^/v1/(projects/[^/]+(?:/locations/[^/]+)?)/transferConfigs$`)
	manualRunsRoute      = regexp.MustCompile(`^/v1/(projects/[^/]+(?:/locations/[^/]+)?/transferConfigs/[^/:]+):startManualRuns$`)
)

// ServeHTTP implements http.Handler.
func (s *TransferServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var endpoint string
	var m []string
	switch {
	case r.Method == http.MethodGet && transferConfigsRoute.MatchString(r.URL.Path):
		endpoint = EndpointTransferList
		m = transferConfigsRoute.FindStringSubmatch(r.URL.Path)
	case r.Method == http.MethodPost && transferConfigsRoute.MatchString(r.URL.Path):
		endpoint = EndpointTransferCreate
		m = transferConfigsRoute.FindStringSubmatch(r.URL.Path)
	case r.Method == http.MethodPost && manualRunsRoute.MatchString(r.URL.Path):
		endpoint = EndpointTransferRuns
		m = manualRunsRoute.FindStringSubmatch(r.URL.Path)
	default:
		writeError(w, http.StatusNotFound, "notFound", "Not found: URL "+r.URL.Path)
		return
	}
	s.requests.Inc(endpoint)
	if f, ok := s.faults.NextFunc(func(k faultKey) bool { return k.endpoint == "" || k.endpoint == endpoint }); ok {
		f.Write(w, r)
		return
	}
	switch endpoint {
	case EndpointTransferList:
		s.list(w, r, m[1])
	case EndpointTransferCreate:
		s.create(w, r, m[1])
	case EndpointTransferRuns:
		s.startRuns(w, r, m[1])
	}
}

func (s *TransferServer) list(w http.ResponseWriter, r *http.Request, parent string) {
	sources := r.URL.Query()["dataSourceIds"]
	resp := &datatransferpb.ListTransferConfigsResponse{}
	s.mu.Lock()
	for _, c := range s.configs {
		if !s.inParent(c.GetName(), parent) || (len(sources) > 0 && !slices.Contains(sources, c.GetDataSourceId())) {
			continue
		}
		resp.TransferConfigs = append(resp.TransferConfigs, proto.CloneOf(c))
	}
	s.mu.Unlock()
	writeProto(w, resp)
}

// inParent reports whether a config name lies under parent. The parent
// may name the project by id or number; a parent without a location
// ("projects/p") covers every location. Called with mu held.
func (s *TransferServer) inParent(name, parent string) bool {
	n := strings.Split(name, "/")   // projects/P/locations/L/transferConfigs/ID
	p := strings.Split(parent, "/") // projects/P[/locations/L]
	if len(n) < 6 || len(p) < 2 {
		return false
	}
	if n[1] != p[1] && n[1] != s.numbers[p[1]] {
		return false
	}
	return len(p) < 4 || strings.EqualFold(n[3], p[3])
}

func (s *TransferServer) create(w http.ResponseWriter, r *http.Request, parent string) {
	var c datatransferpb.TransferConfig
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err == nil {
		err = protojson.Unmarshal(body, &c)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "Invalid JSON payload received. "+err.Error())
		return
	}
	switch {
	case c.GetDataSourceId() == "":
		writeError(w, http.StatusBadRequest, "invalid", "Data source id is required.")
		return
	case c.GetDestinationDatasetId() == "":
		writeError(w, http.StatusBadRequest, "invalid", "Destination dataset id is required.")
		return
	case c.GetDataSourceId() == CarbonFootprintDataSource && c.GetParams().GetFields()["billing_accounts"].GetStringValue() == "":
		writeError(w, http.StatusBadRequest, "invalid", "Parameter billing_accounts is required.")
		return
	}
	if !strings.Contains(parent, "/locations/") {
		parent += "/locations/us"
	}
	s.mu.Lock()
	s.seq++
	if p := strings.Split(parent, "/"); s.numbers[p[1]] != "" {
		p[1] = s.numbers[p[1]]
		parent = strings.Join(p, "/")
	}
	c.Name = fmt.Sprintf("%s/transferConfigs/%08x-0000-4000-8000-%012x", parent, s.seq, s.seq)
	c.State = datatransferpb.TransferState_SUCCEEDED
	c.UpdateTime = timestamppb.Now()
	c.DatasetRegion = parent[strings.LastIndex(parent, "/")+1:]
	s.configs = append(s.configs, proto.CloneOf(&c))
	s.mu.Unlock()
	writeProto(w, &c)
}

func (s *TransferServer) startRuns(w http.ResponseWriter, r *http.Request, name string) {
	var req datatransferpb.StartManualTransferRunsRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err == nil {
		err = protojson.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "Invalid JSON payload received. "+err.Error())
		return
	}
	req.Parent = name
	s.mu.Lock()
	found := slices.ContainsFunc(s.configs, func(c *datatransferpb.TransferConfig) bool { return c.GetName() == name })
	if found {
		s.runs = append(s.runs, proto.CloneOf(&req))
	}
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "notFound", "Transfer config "+name+" not found.")
		return
	}
	tr := req.GetRequestedTimeRange()
	if tr == nil || tr.GetStartTime() == nil || tr.GetEndTime() == nil || !tr.GetStartTime().AsTime().Before(tr.GetEndTime().AsTime()) {
		writeError(w, http.StatusBadRequest, "invalid", "requested_time_range must have a start time before its end time.")
		return
	}
	// The Carbon Footprint source runs monthly, on the 15th: one run per
	// 15th in the range.
	resp := &datatransferpb.StartManualTransferRunsResponse{}
	start, end := tr.GetStartTime().AsTime().UTC(), tr.GetEndTime().AsTime().UTC()
	t := time.Date(start.Year(), start.Month(), 15, 0, 0, 0, 0, time.UTC)
	if t.Before(start) {
		t = t.AddDate(0, 1, 0)
	}
	for i := 0; !t.After(end); i++ {
		resp.Runs = append(resp.Runs, &datatransferpb.TransferRun{
			Name:    fmt.Sprintf("%s/runs/run-%d", name, i),
			RunTime: timestamppb.New(t),
			State:   datatransferpb.TransferState_PENDING,
		})
		t = t.AddDate(0, 1, 0)
	}
	writeProto(w, resp)
}

func writeProto(w http.ResponseWriter, m proto.Message) {
	b, err := protojson.Marshal(m)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internalError", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
