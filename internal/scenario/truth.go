package scenario

import "time"

// Truth is what was planted in a scenario: truth.json. Tests and the demo
// scorecard compare findings with it.
type Truth struct {
	Seed    uint64    `json:"seed"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Sensor  string    `json:"sensor"`
	Network Network   `json:"network"`
	// Campaign is the espionage intrusion.
	Campaign Campaign `json:"campaign"`
	// Commodity lists the commodity malware infections (false leads).
	Commodity []Infection `json:"commodity"`
	// DDoS is the volumetric attack, written as flow records.
	DDoS DDoS `json:"ddos"`
	// Counts are the records written, per log.
	Counts map[string]int64 `json:"counts"`
	// Files lists every file written, relative to the output directory.
	Files []string `json:"files"`
	// Intel names the intel and reference files among them.
	Intel Intel `json:"intel"`
}

// Network describes the generated network.
type Network struct {
	Local     []string          `json:"local"`
	Servers   map[string]string `json:"servers"` // role -> address
	Hosts     int               `json:"hosts"`
	Laptops   int               `json:"laptops"`
	Holidays  []string          `json:"holidays"`
	Resolvers []string          `json:"resolvers"`
}

// Campaign is the planted espionage intrusion.
type Campaign struct {
	Name        string      `json:"name"`
	Hosts       []string    `json:"hosts"`    // internal hosts the actor touched
	Accounts    []string    `json:"accounts"` // accounts the actor used
	ExternalIPs []string    `json:"external_ips"`
	Domains     []string    `json:"domains"`
	Techniques  []Technique `json:"techniques"`
	// Exfiltration is the bytes sent to each destination.
	Exfiltration []Exfil   `json:"exfiltration"`
	FirstEvent   time.Time `json:"first_event"` // the start of the dwell time
	Containment  time.Time `json:"containment"` // when the actor was cut off
	// Taken are the files that left, named on the wire.
	Taken []TakenFile `json:"taken"`
	// Actor is who the scenario's intel attributes the campaign to.
	Actor Actor `json:"actor"`
	// Infrastructure is the registration of the outside addresses, as
	// the scenario's .mmdb gives it.
	Infrastructure []Registration `json:"infrastructure"`
	// Pivots are further addresses of the actor that no finding names:
	// found by following the infrastructure (a shared certificate,
	// passive DNS).
	Pivots []string `json:"pivots"`
}

// Technique is one planted ATT&CK technique and where it shows.
type Technique struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Hosts  []string  `json:"hosts"`            // internal hosts involved
	Peers  []string  `json:"peers,omitempty"`  // the other ends: addresses
	Domain string    `json:"domain,omitempty"` // or a domain
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Detector is the detector expected to find it on network data;
	// "" when it only shows in host logs.
	Detector string `json:"detector"`
	Note     string `json:"note,omitempty"`
	Events   int    `json:"events"` // records written for it
}

// Exfil is data sent to one destination.
type Exfil struct {
	Src    string `json:"src"`
	Dst    string `json:"dst"`
	Domain string `json:"domain,omitempty"`
	Bytes  int64  `json:"bytes"`
}

// Infection is a commodity malware infection: noisy, not targeted.
type Infection struct {
	Name   string   `json:"name"`
	Hosts  []string `json:"hosts"`
	Peers  []string `json:"peers"`
	Domain string   `json:"domain"`
	Period string   `json:"period"`
}

// DDoS is the volumetric attack against the network's edge.
type DDoS struct {
	Target   string    `json:"target"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Vectors  []string  `json:"vectors"`
	Sources  int       `json:"sources"`
	Flows    int64     `json:"flows"`
	Packets  int64     `json:"packets"`
	Bytes    int64     `json:"bytes"`
	FlowFile string    `json:"flow_file"`
}
