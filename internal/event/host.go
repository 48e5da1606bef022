package event

import "time"

// HostEvent is one Windows event, whatever it was read from: an EVTX file,
// a Winlogbeat or Elastic Agent export, NXLog JSON, or the flat JSON of the
// OTRF Security Datasets. The System part of the event has its own fields;
// the EventData or UserData part is kept whole, in order, as Fields.
type HostEvent struct {
	TS       time.Time // System/TimeCreated/@SystemTime, UTC
	Channel  string    // System/Channel: "Security", "Microsoft-Windows-Sysmon/Operational", ...
	Provider string    // System/Provider/@Name
	EventID  uint32    // System/EventID (without its Qualifiers)
	Computer string    // System/Computer, as the host wrote it
	RecordID uint64    // System/EventRecordID: the record's number in its channel
	Level    uint8     // System/Level
	Task     uint16    // System/Task
	Opcode   uint8     // System/Opcode
	Keywords uint64    // System/Keywords
	// UserID is System/Security/@UserID: the SID the event was logged for
	// ("" when absent).
	UserID    string
	ProcessID uint32 // System/Execution/@ProcessID
	ThreadID  uint32 // System/Execution/@ThreadID
	// Fields are the event's data, in the order the event holds them: each
	// EventData/Data element by its Name attribute (unnamed ones as "Data"),
	// each leaf element of UserData by its element name. A name may repeat.
	Fields []Field
	// Carved is true for a record recovered from the unused space of an
	// EVTX chunk: readable, but no longer part of the log.
	Carved bool
	// Src is where the event was read; for EVTX files Line holds the
	// record's byte offset in the file.
	Src Source
}

// Field is one named value of a HostEvent.
type Field struct {
	Name  string
	Value string
}

// Field returns the value of the first field named name, and whether there
// is one.
func (e *HostEvent) Field(name string) (string, bool) {
	for _, f := range e.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}
