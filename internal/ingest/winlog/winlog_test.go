package winlog

import (
	"archive/zip"
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// One event (a network logon) in each shape the package reads.
var shapes = map[string]string{
	"nxlog": `{"EventTime":"2020-12-19 06:59:28","Hostname":"WORKSTATION6.theshire.local","Keywords":"0x8020000000000000","EventID":4624,` +
		`"SourceName":"Microsoft-Windows-Security-Auditing","RecordNumber":52,"ExecutionProcessID":612,"Channel":"Security",` +
		`"Message":"An account was successfully logged on.","TargetUserName":"pgustavo","LogonType":"3","IpAddress":"172.18.39.5","@timestamp":"2020-12-19T06:59:28.000Z"}`,
	"scenario": `{"TimeCreated":"2020-12-19T06:59:28.000Z","EventID":4624,"Channel":"Security","Provider":"Microsoft-Windows-Security-Auditing",` +
		`"Computer":"WORKSTATION6.theshire.local","EventRecordID":52,"TargetUserName":"pgustavo","LogonType":3,"IpAddress":"172.18.39.5"}`,
	"ecs": `{"@timestamp":"2020-12-19T06:59:28Z","event":{"code":"4624"},"host":{"name":"workstation6"},"winlog":{"channel":"Security",` +
		`"provider_name":"Microsoft-Windows-Security-Auditing","event_id":"4624","computer_name":"WORKSTATION6.theshire.local","record_id":52,` +
		`"process":{"pid":612,"thread":{"id":7}},"event_data":{"TargetUserName":"pgustavo","LogonType":"3","IpAddress":"172.18.39.5"}}}`,
	"beat6": `{"@timestamp":"2020-12-19T06:59:28.000Z","beat":{"name":"x"},"log_name":"Security","source_name":"Microsoft-Windows-Security-Auditing",` +
		`"event_id":4624,"computer_name":"WORKSTATION6.theshire.local","record_number":"52","process_id":612,` +
		`"event_data":{"TargetUserName":"pgustavo","LogonType":"3","IpAddress":"172.18.39.5"}}`,
	"evtx_dump": `{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":` +
		`{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":4624,"TimeCreated":{"#attributes":{"SystemTime":"2020-12-19T06:59:28.000000Z"}},` +
		`"EventRecordID":52,"Execution":{"#attributes":{"ProcessID":612,"ThreadID":7}},"Channel":"Security","Computer":"WORKSTATION6.theshire.local"},` +
		`"EventData":{"TargetUserName":"pgustavo","LogonType":3,"IpAddress":"172.18.39.5"}}}`,
}

func TestShapesAgree(t *testing.T) {
	want := event.HostEvent{TS: time.Date(2020, 12, 19, 6, 59, 28, 0, time.UTC), Channel: "Security",
		Provider: "Microsoft-Windows-Security-Auditing", EventID: 4624, Computer: "WORKSTATION6.theshire.local", RecordID: 52,
		Fields: []event.Field{{Name: "TargetUserName", Value: "pgustavo"}, {Name: "LogonType", Value: "3"}, {Name: "IpAddress", Value: "172.18.39.5"}}}
	for name, line := range shapes {
		if !detect(&ingest.Input{Head: []byte(line)}) {
			t.Errorf("%s: not detected", name)
		}
		got, err := Decode([]byte(line))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		got.ProcessID, got.ThreadID, got.Keywords = 0, 0, 0
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

func TestBadLines(t *testing.T) {
	for _, line := range []string{`not json`, `[1,2]`, `{"EventID":"x","TimeCreated":"2020-01-01T00:00:00Z"}`, `{"EventID":4624}`,
		`{"winlog":{"channel":"Security"},"@timestamp":"2020-01-01T00:00:00Z"}`, `{"Event":{"EventData":{}}}`, `{"EventID":1,"TimeCreated":"2020-01-01T00:00:00Z"`} {
		if _, err := Decode([]byte(line)); err == nil {
			t.Errorf("%q decoded without error", line)
		}
	}
}

// TestSecurityDatasets decodes every event of the OTRF captures in the
// shared datasets: all must decode, with an event id and a channel.
func TestSecurityDatasets(t *testing.T) {
	zips, _ := filepath.Glob(filepath.Join(datasets, "mordor-atomic-subset", "*", "*.zip"))
	if len(zips) == 0 {
		t.Skip("shared dataset mordor-atomic-subset absent: skipping")
	}
	total := 0
	for _, z := range zips {
		zr, err := zip.OpenReader(z)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			if !strings.HasSuffix(f.Name, ".json") {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(rc)
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			for n := 1; sc.Scan(); n++ {
				if len(sc.Bytes()) == 0 {
					continue
				}
				e, err := Decode(sc.Bytes())
				if err != nil || e.Channel == "" {
					t.Errorf("%s:%d: %v (channel %q)", f.Name, n, err, e.Channel)
					break
				}
				total++
			}
			_ = rc.Close()
		}
		_ = zr.Close()
	}
	if total < 80000 {
		t.Errorf("decoded %d events, the zipped captures hold over 80,000", total)
	}
}

var datasets = func() string {
	if d := os.Getenv("DWELL_DATASETS"); d != "" {
		return d
	}
	return "../../../../shared/datasets"
}()
