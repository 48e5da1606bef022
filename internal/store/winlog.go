package store

import (
	"strconv"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// promoted lists the event data fields that get a column of their own in
// the winlog table: those the host detections and most hunts filter on.
// A column takes the first of its Windows field names the event has
// (Security's 4688 says NewProcessName where Sysmon says Image). Every
// field, promoted or not, is also in data_names/data_values.
var promoted = []struct {
	column string
	fields []string
	doc    string
}{
	{"subject_user_name", []string{"SubjectUserName"}, "account that did the action (Security log)"},
	{"subject_domain_name", []string{"SubjectDomainName"}, "domain of that account"},
	{"subject_logon_id", []string{"SubjectLogonId"}, "logon session of that account"},
	{"target_user_name", []string{"TargetUserName"}, "account acted on: the one logged on, created, changed"},
	{"target_domain_name", []string{"TargetDomainName"}, "domain of that account"},
	{"target_logon_id", []string{"TargetLogonId"}, "logon session created (4624)"},
	{"logon_type", []string{"LogonType"}, "2 interactive, 3 network, 9 new credentials, 10 remote interactive, ..."},
	{"auth_package", []string{"AuthenticationPackageName"}, "NTLM, Kerberos, Negotiate"},
	{"logon_process", []string{"LogonProcessName"}, "logon process (NtLmSsp, Kerberos, User32, seclogo)"},
	{"ip_address", []string{"IpAddress"}, "address the logon or request came from, as written (- when local)"},
	{"ip_port", []string{"IpPort"}, "its port"},
	{"workstation_name", []string{"WorkstationName"}, "workstation the logon came from, as the client named it"},
	{"user", []string{"User"}, "account a process ran as (Sysmon)"},
	{"image", []string{"Image", "NewProcessName"}, "process executable (Sysmon Image, Security 4688 NewProcessName)"},
	{"command_line", []string{"CommandLine"}, "process command line"},
	{"parent_image", []string{"ParentImage", "ParentProcessName"}, "parent process executable"},
	{"parent_command_line", []string{"ParentCommandLine"}, "parent process command line"},
	{"hashes", []string{"Hashes"}, "hashes of the executable (Sysmon)"},
	{"source_image", []string{"SourceImage"}, "process that opened another (Sysmon 8, 10)"},
	{"target_image", []string{"TargetImage"}, "process opened (Sysmon 8, 10)"},
	{"granted_access", []string{"GrantedAccess"}, "access mask granted (Sysmon 10)"},
	{"target_filename", []string{"TargetFilename"}, "file created (Sysmon 11, 15, 23)"},
	{"target_object", []string{"TargetObject"}, "registry key or value (Sysmon 12, 13, 14)"},
	{"details", []string{"Details"}, "registry value written (Sysmon 13)"},
	{"source_ip", []string{"SourceIp"}, "connection source address (Sysmon 3)"},
	{"source_port", []string{"SourcePort"}, "its port"},
	{"destination_ip", []string{"DestinationIp"}, "connection destination address (Sysmon 3)"},
	{"destination_port", []string{"DestinationPort"}, "its port"},
	{"destination_hostname", []string{"DestinationHostname"}, "destination name, when Sysmon resolved it"},
	{"query_name", []string{"QueryName"}, "name queried (Sysmon 22)"},
	{"service_name", []string{"ServiceName"}, "service installed (7045, 4697) or ticket's service (4769)"},
	{"service_file", []string{"ImagePath", "ServiceFileName"}, "the service's executable and arguments"},
	{"task_name", []string{"TaskName"}, "scheduled task (4698, 4702)"},
	{"ticket_encryption_type", []string{"TicketEncryptionType"}, "Kerberos ticket encryption (0x17 is RC4)"},
	{"share_name", []string{"ShareName"}, "network share accessed (5140, 5145)"},
	{"relative_target_name", []string{"RelativeTargetName"}, "file or pipe on that share (5145)"},
	{"object_type", []string{"ObjectType"}, "object accessed (4662, 4663)"},
	{"properties", []string{"Properties"}, "properties accessed: DCSync's replication GUIDs (4662)"},
	{"access_mask", []string{"AccessMask"}, "access requested"},
	{"script_block_text", []string{"ScriptBlockText"}, "PowerShell script block (4104)"},
}

// PromotedFields maps each Windows field name that has a column of its own
// in the winlog table to that column.
func PromotedFields() map[string]string {
	m := make(map[string]string)
	for _, p := range promoted {
		for _, f := range p.fields {
			m[f] = p.column
		}
	}
	return m
}

func winlogTable() *Table[event.HostEvent] {
	type R = event.HostEvent
	u64 := func(v uint64) event.Opt[uint64] { return event.Some(v) }
	cols := []Column[R]{
		timeCol("ts", "", "when the event was logged: System/TimeCreated (UTC)", func(r *R) (time.Time, bool) { return r.TS, true }),
		strCol("channel", "", "event log: Security, System, Microsoft-Windows-Sysmon/Operational, ...", func(r *R) string { return r.Channel }),
		strCol("provider", "", "System/Provider/@Name", func(r *R) string { return r.Provider }),
		countCol("event_id", "", "System/EventID", func(r *R) event.Opt[uint64] { return u64(uint64(r.EventID)) }),
		strCol("computer", "", "System/Computer: the host that logged the event", func(r *R) string { return r.Computer }),
		countCol("record_id", "", "System/EventRecordID: the record's number in its log", func(r *R) event.Opt[uint64] { return u64(r.RecordID) }),
		countCol("level", "", "System/Level: 1 critical, 2 error, 3 warning, 4 information", func(r *R) event.Opt[uint64] { return u64(uint64(r.Level)) }),
		countCol("task", "", "System/Task", func(r *R) event.Opt[uint64] { return u64(uint64(r.Task)) }),
		countCol("opcode", "", "System/Opcode", func(r *R) event.Opt[uint64] { return u64(uint64(r.Opcode)) }),
		strCol("keywords", "", "System/Keywords, hexadecimal as Windows writes it", func(r *R) string {
			return "0x" + strconv.FormatUint(r.Keywords, 16)
		}),
		strCol("user_sid", "", "System/Security/@UserID: the SID the event was logged for", func(r *R) string { return r.UserID }),
		countCol("process_id", "", "System/Execution/@ProcessID: the process that logged it", func(r *R) event.Opt[uint64] { return u64(uint64(r.ProcessID)) }),
		countCol("thread_id", "", "System/Execution/@ThreadID", func(r *R) event.Opt[uint64] { return u64(uint64(r.ThreadID)) }),
	}
	for _, p := range promoted {
		fields := p.fields
		doc := p.doc + " (" + fields[0]
		for _, f := range fields[1:] {
			doc += ", " + f
		}
		cols = append(cols, strCol(p.column, "", doc+")", func(r *R) string {
			for _, name := range fields {
				if v, ok := r.Field(name); ok {
					return v
				}
			}
			return ""
		}))
	}
	cols = append(cols,
		strsCol("data_names", "", "names of every EventData/UserData field, in order (a name may repeat)", func(r *R) []string {
			out := make([]string, len(r.Fields))
			for i, f := range r.Fields {
				out[i] = f.Name
			}
			return out
		}),
		strsCol("data_values", "", "their values, in the same order: data_values[i] belongs to data_names[i]", func(r *R) []string {
			out := make([]string, len(r.Fields))
			for i, f := range r.Fields {
				out[i] = f.Value
			}
			return out
		}),
		boolCol("carved", "", "recovered from unused space of an EVTX chunk, or read past a damaged record", func(r *R) event.Opt[bool] {
			return event.Some(r.Carved)
		}),
	)
	src := func(r *R) *event.Source { return &r.Src }
	prov := provenance(src)
	prov[2].Doc = "byte offset of the record in its EVTX file, or its line in a JSON file"
	return &Table[R]{Kind: event.KindWinlog,
		Doc: "One row per Windows event, from EVTX files or JSON exports (Winlogbeat, Elastic Agent, NXLog, Security Datasets): " +
			"its System fields, the data fields hunts use most as columns, and every data field in data_names/data_values " +
			"(a field by name: data_values[list_position(data_names, 'LogonGuid')] in DuckDB, " +
			"data_values[indexOf(data_names, 'LogonGuid')] in ClickHouse).",
		Columns: append(cols, prov...), Rows: func(b *event.Batch) []R { return b.Host }, Source: src,
		Time: func(r *R) time.Time { return r.TS }}
}
