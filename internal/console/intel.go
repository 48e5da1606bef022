package console

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// intel lists the stored indicators: counts per source, type and TLP, and
// the indicators themselves, their values shown as the user may read
// them (mayRead).
func (c *Console) intel(w http.ResponseWriter, r *http.Request, u *user) {
	var doc struct {
		Indicators []struct {
			Source     string    `json:"Source"`
			Type       string    `json:"Type"`
			Value      string    `json:"Value"`
			Name       string    `json:"Name"`
			TLP        string    `json:"TLP"`
			Confidence int       `json:"Confidence"`
			Revoked    bool      `json:"Revoked"`
			Added      time.Time `json:"Added"`
		} `json:"indicators"`
	}
	if err := c.run(r.Context(), &doc, "intel", "list", "--format", "json"); err != nil {
		c.fail(w, r, u, http.StatusServiceUnavailable, err.Error())
		return
	}
	type count struct {
		Source, Type, TLP string
		N                 int
	}
	counts := map[[3]string]int{}
	var rows [][]string
	for _, i := range doc.Indicators {
		tlp := strings.ToLower(i.TLP)
		counts[[3]string{i.Source, i.Type, tlp}]++
		if len(rows) >= 500 {
			continue
		}
		value, name := i.Value, i.Name
		if !u.mayRead(tlp) {
			value, name = "(TLP:"+strings.ToUpper(tlp)+")", ""
		}
		state := ""
		if i.Revoked {
			state = "revoked"
		}
		rows = append(rows, []string{i.Type, clip(value, 200), clip(name, 120), clip(i.Source, 80), strings.ToUpper(tlp), state})
	}
	var list []count
	for k, n := range counts {
		list = append(list, count{k[0], k[1], k[2], n})
	}
	slices.SortFunc(list, func(a, b count) int {
		return strings.Compare(a.Source+"\x00"+a.Type+"\x00"+a.TLP, b.Source+"\x00"+b.Type+"\x00"+b.TLP)
	})
	var seen struct {
		Sightings []struct {
			Type     string    `json:"type"`
			Observed string    `json:"observed"`
			Log      string    `json:"log"`
			Sensor   string    `json:"sensor"`
			First    time.Time `json:"first"`
			Last     time.Time `json:"last"`
			Count    int64     `json:"count"`
			Peers    []string  `json:"peers"`
			Source   string    `json:"source"`
			TLP      string    `json:"tlp"`
		} `json:"sightings"`
	}
	var sightings [][]string
	if err := c.run(r.Context(), &seen, "intel", "sightings", "--format", "json"); err == nil {
		for _, x := range seen.Sightings {
			if len(sightings) >= 500 {
				break
			}
			observed, peers := x.Observed, strings.Join(x.Peers[:min(len(x.Peers), 5)], ", ")
			if !u.mayRead(strings.ToLower(x.TLP)) {
				observed, peers = "(TLP:"+strings.ToUpper(x.TLP)+")", ""
			}
			sightings = append(sightings, []string{x.Type, clip(observed, 120), x.Log, x.Sensor, x.First.UTC().Format("2006-01-02"),
				x.Last.UTC().Format("2006-01-02"), fmt.Sprint(x.Count), clip(peers, 120), clip(x.Source, 60)})
		}
	}
	c.render(w, http.StatusOK, "intel", map[string]any{"User": u, "Counts": list, "Rows": rows, "Total": len(doc.Indicators),
		"Sightings": sightings, "CanImport": u.Can(RoleAnalyst), "Message": r.URL.Query().Get("message")})
}

// mayRead reports whether the user may read an indicator marked tlp
// (lower case): TLP:RED only the organisation's admins (an indicator
// names nobody who may see it), TLP:AMBER+STRICT only the organisation.
func (u *user) mayRead(tlp string) bool {
	switch tlp {
	case "red":
		return u.Org == "" && u.Can(RoleAdmin)
	case "amber+strict":
		return u.Org == ""
	}
	return true
}

// maxUpload bounds an intel file imported through the console.
const maxUpload = 64 << 20

// importIntel imports an uploaded file as dwell intel import does, its
// source named after the user and the file.
func (c *Console) importIntel(w http.ResponseWriter, r *http.Request, u *user) {
	back := func(msg string) {
		http.Redirect(w, r, "/intel?message="+url.QueryEscape(msg), http.StatusSeeOther)
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		back("no file: " + err.Error())
		return
	}
	defer func() { _ = f.Close() }()
	name := filepath.Base(hdr.Filename)
	if !ValidName(strings.NewReplacer(" ", "_", "+", "_").Replace(name)) {
		name = "upload"
	}
	dir, err := os.MkdirTemp("", "dwell-intel-")
	if err != nil {
		back(err.Error())
		return
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, name)
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		back(err.Error())
		return
	}
	n, err := io.Copy(out, io.LimitReader(f, maxUpload+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil || n > maxUpload {
		back(fmt.Sprintf("the file could not be read whole (at most %d MiB)", maxUpload>>20))
		return
	}
	var stdout, stderr strings.Builder
	source := "console:" + u.Name + ":" + name
	code := c.o.Runner.Run(r.Context(), []string{"intel", "import", "--source", source, "--", path}, &stdout, &stderr)
	c.audit(u.Name, "intel_import", source, fmt.Sprintf("%d bytes, exit %d", n, code))
	if code != 0 {
		back("not imported: " + clip(strings.TrimSpace(stderr.String()), 300))
		return
	}
	back(clip(strings.TrimSpace(stdout.String()), 300))
}
