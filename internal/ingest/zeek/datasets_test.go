package zeek

import "os"

// datasets is where the shared test data lives: $DWELL_DATASETS, or
// ../shared/datasets beside the repository.
var datasets = func() string {
	if d := os.Getenv("DWELL_DATASETS"); d != "" {
		return d
	}
	return "../../../../shared/datasets"
}()
