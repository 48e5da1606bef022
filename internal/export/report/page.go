package report

// page is the report's HTML template: everything inline, nothing fetched.
const page = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{{.Title}} — TLP:{{upper .TLP}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 0 1.5em 3em; color: #111; }
.tlp { font: bold 14px monospace; background: #000; padding: 6px 10px; display: inline-block; margin: 1em 0; }
h1 { margin: 0.2em 0; } h2 { border-bottom: 2px solid #333; padding-bottom: 4px; margin-top: 2em; }
h3 { margin-top: 1.4em; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eee; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
.class { font-weight: bold; text-transform: uppercase; }
.meta { color: #444; font-size: 13px; }
svg { display: block; margin: 0.5em 0; max-width: 100%; height: auto; }
@media print { h2 { page-break-before: always; } .tlp { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
</style>
</head>
<body>
<div id="tlp" class="tlp" style="color: {{tlpColour .TLP}}">TLP:{{upper .TLP}}</div>
<h1>{{.Title}}</h1>
<p class="meta">Generated {{when .Generated}} by {{.Version}} from the hunt of {{when .HuntedAt}}.</p>

<section id="summary">
<h2>Executive summary</h2>
{{if not .Incidents}}<p>The hunt found no incident.</p>{{else}}
<p>{{len .Incidents}} incident(s).</p>
<table>
<tr><th>Incident</th><th>Class</th><th>Severity</th><th>Dwell start</th><th>Last activity</th><th>Hosts</th><th>Summary</th></tr>
{{range .Incidents}}<tr><td class="mono"><a href="#{{.ID}}">{{.ID}}</a></td><td class="class">{{.Class}}</td><td>{{.Severity}} ({{printf "%.2f" .Score}})</td>
<td>{{when .DwellStart}}</td><td>{{when .LastSeen}}</td><td class="num">{{len .Hosts}}</td><td>{{.Summary}}</td></tr>
{{end}}</table>{{end}}
</section>

{{range $i, $inc := .Incidents}}
<section id="{{$inc.ID}}" class="incident">
<h2>{{$inc.ID}}: <span class="class">{{$inc.Class}}</span></h2>
<p>{{$inc.Summary}}</p>
<p class="meta">Dwell start (earliest evidence): <b>{{when $inc.DwellStart}}</b>; last activity {{when $inc.LastSeen}}; severity {{$inc.Severity}} ({{printf "%.2f" $inc.Score}}).</p>

<h3>Timeline</h3>
{{timeline $inc}}

<h3>Affected hosts and accounts</h3>
<p class="mono">{{addrs $inc.Hosts}}</p>
<p>Accounts: {{if $inc.Accounts}}{{join $inc.Accounts ", "}}{{else}}none known (host logs are not read yet){{end}}</p>

<h3>Attacker infrastructure</h3>
<table class="infrastructure"><tr><th>Kind</th><th>Value</th><th>Internal hosts</th><th>Seen by</th></tr>
{{range $inc.Infrastructure}}<tr><td>{{.Kind}}</td><td class="mono">{{.Value}}</td><td class="num">{{.Hosts}}</td><td>{{if .Pivot}}pivot: {{.Pivot}}{{else}}{{join .Detectors ", "}}{{end}}</td></tr>
{{end}}</table>

<h3>Data sent out</h3>
{{if not $inc.BytesOut}}<p>No exfiltration was measured.</p>{{else}}
<table class="exfiltration"><tr><th>From</th><th>To</th><th>Bytes</th><th></th></tr>
{{range $inc.BytesOut}}<tr><td class="mono">{{.Src}}</td><td class="mono">{{.Dst}}{{if .Domain}} ({{.Domain}}){{end}}</td><td class="num">{{.Bytes}} ({{bytes .Bytes}})</td>
<td>{{daybars .}}</td></tr>
{{end}}</table>{{end}}

<h3>Origin, data taken, attribution</h3>
<p><b>Where it came from:</b> {{$inc.OriginSentence}}</p>
{{if hasOrigin $inc}}<table class="origin"><tr><th>Address</th><th>Autonomous system</th><th>ISP</th><th>Country</th></tr>
{{range $inc.Infrastructure}}{{if .Origin}}<tr><td class="mono">{{.Value}}</td><td>{{if .Origin.ASN}}AS{{.Origin.ASN}} {{.Origin.ASOrg}}{{end}}</td><td>{{.Origin.ISP}}</td><td>{{.Origin.Country}}{{if .Origin.Registered}} (registered {{.Origin.Registered}}){{end}}</td></tr>
{{end}}{{end}}</table>{{end}}
{{with $inc.Answers}}
{{if .PassiveDNS}}<table class="passive-dns"><tr><th>Name</th><th>Address</th><th>Seen in</th><th>Records</th><th>First</th><th>Last</th></tr>
{{range $k, $x := .PassiveDNS}}{{if lt $k 30}}<tr><td class="mono">{{$x.Name}}</td><td class="mono">{{$x.Addr}}</td><td>{{$x.Log}}</td><td class="num">{{$x.Count}}</td><td>{{when $x.First}}</td><td>{{when $x.Last}}</td></tr>
{{end}}{{end}}</table>{{end}}
<p><b>What was taken:</b> {{.TakenSentence}}</p>
{{if .Taken}}<table class="taken"><tr><th>Destination</th><th>Names</th><th>From</th><th>Bytes</th><th>Connections</th><th>Days</th></tr>
{{range .Taken}}<tr><td class="mono">{{.Dst}}</td><td>{{join .Names ", "}}</td><td class="mono">{{addrs .Hosts}}</td><td class="num">{{.Bytes}} ({{bytes (unsigned .Bytes)}})</td><td class="num">{{.Conns}}</td><td class="num">{{len .PerDay}}</td></tr>
{{end}}</table>
<table class="transfers"><tr><th>Time</th><th>Record</th><th>Bytes</th><th>What</th><th>Source file and line</th></tr>
{{range .Taken}}{{range $k, $x := .Transfers}}{{if lt $k 10}}<tr><td>{{when $x.At}}</td><td class="mono">{{$x.Log}} {{$x.Src}} → {{$x.Dst}}:{{$x.Port}}</td><td class="num">{{bytes (unsigned $x.Bytes)}}</td>
<td>{{if $x.Name}}file <b>{{$x.Name}}</b> {{$x.MIME}}{{if $x.SHA256}} <span class="mono">sha256 {{$x.SHA256}}</span>{{end}}{{end}}{{if $x.URI}} {{$x.Method}} <span class="mono">{{$x.Host}}{{$x.URI}}</span>{{end}}</td>
<td class="mono">{{$x.File}}:{{$x.Line}}</td></tr>
{{end}}{{end}}{{end}}</table>{{end}}
{{if .HostActions}}<table class="collection"><tr><th>Time</th><th>Computer</th><th>Action</th><th>Object</th><th>Account</th><th>Events</th><th>Source</th></tr>
{{range .HostActions}}<tr><td>{{when .At}}</td><td>{{.Computer}}</td><td>{{.What}}</td><td class="mono">{{.Object}}</td><td>{{.Account}}</td><td class="num">{{.Count}}</td><td class="mono">{{.File}}:{{.Line}} (event {{.EventID}})</td></tr>
{{end}}</table>{{end}}
<p><b>Who is behind it:</b> {{.WhoSentence}}</p>
{{if .Hypotheses}}<table class="hypotheses"><tr><th>#</th><th>Actor</th><th>Score</th><th>Intel</th><th>Behaviour</th><th>For</th><th>Against</th></tr>
{{range $k, $h := .Hypotheses}}{{if lt $k 5}}<tr><td class="num">{{add $k 1}}</td><td>{{$h.Line}}</td><td class="num">{{printf "%.2f" $h.Score}}</td><td class="num">{{printf "%.2f" $h.Intel}}</td><td class="num">{{printf "%.2f" $h.Behaviour}}</td>
<td>{{range $h.For}}{{.}}<br>{{end}}</td><td>{{range $h.Against}}{{.}}<br>{{end}}</td></tr>
{{end}}{{end}}</table>{{end}}
{{if .Catalogue}}<p class="meta">Behaviour compared with {{.Catalogue}}.</p>{{end}}
{{range .Notes}}<p class="meta">Note: {{.}}</p>{{end}}
<p class="caveat"><b>Caveat.</b> {{.Caveat}}</p>
{{end}}

<h3>ATT&amp;CK techniques</h3>
<p class="mono">{{join $inc.Attack " → "}}</p>

<h3>Evidence</h3>
<table class="evidence"><tr><th>#</th><th>First seen</th><th>Detector</th><th>Score</th><th>Finding</th><th>Source file and line</th><th>Record</th></tr>
{{range $j, $f := $inc.Findings}}{{$e := evidence $i $j}}<tr><td class="num">{{add $j 1}}</td><td>{{when $f.FirstSeen}}</td><td>{{$f.Detector}}</td><td class="num">{{printf "%.2f" $f.Score}}</td>
<td>{{$f.Summary}}</td><td class="mono">{{if $e}}{{$e.SourceFile}}:{{$e.SourceLine}}{{else}}—{{end}}</td><td class="mono">{{if $e}}{{$e.Table}}: {{$e.Record}}{{end}}</td></tr>
{{end}}</table>
</section>
{{end}}

<section id="manifest">
<h2>Evidence manifest</h2>
<p>Produced by <code>{{.Version}}</code> with <code>{{.Command}}</code> on {{when .Generated}}. The SHA-256 of this report is in the file beside it (<code>.sha256</code>).</p>
<p>{{len .Inputs}} ingested input file(s), hashed as they are now:</p>
<table class="inputs"><tr><th>File</th><th>Sensor</th><th>Bytes</th><th>Records</th><th>SHA-256</th></tr>
{{range .Inputs}}<tr><td class="mono">{{.Path}}</td><td>{{.Sensor}}</td><td class="num">{{.Size}}</td><td class="num">{{.Rows}}</td>
<td class="mono">{{if .SHA256}}{{.SHA256}}{{else}}{{.Note}}{{end}}</td></tr>
{{end}}</table>
</section>
<div class="tlp" style="color: {{tlpColour .TLP}}">TLP:{{upper .TLP}}</div>
</body>
</html>
`
