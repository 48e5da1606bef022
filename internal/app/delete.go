package app

import (
	"context"
	"fmt"

	"github.com/dwell-nsm/dwell/internal/store"
)

func deleteCommand() command {
	return command{
		name:    "delete",
		summary: "delete every record of a sensor (data ingested under the wrong name, or that must not be kept)",
		usage:   "delete [--db FILE] --sensor NAME [--yes]",
		example: `  dwell delete --sensor test-lab            # says what it would delete
  dwell delete --sensor test-lab --yes      # deletes it

The sensor's records, quarantined records, intel summary and the progress
of its inputs go (read again, they are stored again); the sightings are
matched again. dwell status lists the sensors.
`,
		run: runDelete,
	}
}

func runDelete(ctx context.Context, a *App, args []string) error {
	var co common
	fs := a.newFlags(deleteCommand(), &co)
	fs.StringVar(&co.sensor, "sensor", "", "the sensor `name` whose records to delete, as dwell status lists it")
	yes := fs.Bool("yes", false, "delete (without it, say what would be deleted)")
	if rest, err := parse(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if co.sensor == "" {
		return usagef("name the sensor to delete with --sensor (dwell status lists them)")
	}
	name := co.sensor
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	if !storeExists(cfg.Store) {
		return fmt.Errorf("no store at %s", cfg.Store)
	}
	st, err := co.openStore(ctx, cfg, !*yes)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	s, err := statusOf(ctx, st, cfg.Store)
	if err != nil {
		return err
	}
	var found *sensorStatus
	for i := range s.Sensors {
		if s.Sensors[i].Sensor == name {
			found = &s.Sensors[i]
		}
	}
	if found == nil {
		return fmt.Errorf("no input of sensor %q is in the store (dwell status lists the sensors)", sanitize(name, 60))
	}
	if !*yes {
		fmt.Fprintf(a.Stdout, "sensor %s: %d input(s), %s records; add --yes to delete them\n", sanitize(name, 60), found.Inputs, withCommas(found.Records))
		return nil
	}
	n, err := st.DeleteSensor(ctx, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "sensor %s: %s records and the progress of %d input(s) deleted\n", sanitize(name, 60), withCommas(n), found.Inputs)
	sightings, err := retrohunt(ctx, st, store.Window{})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "retro-hunt over all history again: %d sighting(s); the kept incidents are the last hunt's until dwell hunt runs again\n", len(sightings))
	return nil
}
