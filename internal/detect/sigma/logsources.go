package sigma

// DefaultConfig is dwell's own mapping of Sigma's Windows log sources:
// the categories Sysmon and the Security log report, to their event ids
// and channels, and the services, to their channels. A rule for a log
// source it does not name is refused; a configuration file in SigmaHQ's
// CI format (thor.yml) can replace it.
func DefaultConfig() *Config {
	c := &Config{Logsources: map[string]lsEntry{}}
	sysmon := "Microsoft-Windows-Sysmon/Operational"
	services := map[string][]string{
		"security":                             {"Security"},
		"system":                               {"System"},
		"application":                          {"Application"},
		"sysmon":                               {sysmon},
		"powershell":                           {"Microsoft-Windows-PowerShell/Operational", "PowerShellCore/Operational"},
		"powershell-classic":                   {"Windows PowerShell"},
		"taskscheduler":                        {"Microsoft-Windows-TaskScheduler/Operational"},
		"wmi":                                  {"Microsoft-Windows-WMI-Activity/Operational"},
		"windefend":                            {"Microsoft-Windows-Windows Defender/Operational"},
		"ntlm":                                 {"Microsoft-Windows-NTLM/Operational"},
		"bits-client":                          {"Microsoft-Windows-Bits-Client/Operational"},
		"codeintegrity-operational":            {"Microsoft-Windows-CodeIntegrity/Operational"},
		"firewall-as":                          {"Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"},
		"dns-server":                           {"DNS Server"},
		"terminalservices-localsessionmanager": {"Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"},
		"printservice-admin":                   {"Microsoft-Windows-PrintService/Admin"},
		"printservice-operational":             {"Microsoft-Windows-PrintService/Operational"},
		"smbclient-security":                   {"Microsoft-Windows-SmbClient/Security"},
		"msexchange-management":                {"MSExchange Management"},
		"applocker": {"Microsoft-Windows-AppLocker/MSI and Script", "Microsoft-Windows-AppLocker/EXE and DLL",
			"Microsoft-Windows-AppLocker/Packaged app-Deployment", "Microsoft-Windows-AppLocker/Packaged app-Execution"},
		"openssh":    {"OpenSSH/Operational"},
		"shell-core": {"Microsoft-Windows-Shell-Core/Operational"},
	}
	for svc, chans := range services {
		var src []string
		for _, ch := range chans {
			src = append(src, "WinEventLog:"+ch)
		}
		c.Logsources["service-"+svc] = lsEntry{Product: "windows", Service: svc, Sources: src}
	}
	category := func(name, service string, ids []int, fields map[string]string) {
		var v []any
		for _, id := range ids {
			v = append(v, id)
		}
		c.Logsources["category-"+name+"-"+service] = lsEntry{Category: name, Product: "windows",
			Conditions: map[string]any{"EventID": v}, Rewrite: Logsource{Product: "windows", Service: service}, FieldMappings: fields}
	}
	category("process_creation", "sysmon", []int{1}, nil)
	category("process_creation", "security", []int{4688}, map[string]string{"Image": "NewProcessName", "ParentImage": "ParentProcessName"})
	for name, ids := range map[string][]int{
		"file_change": {2}, "network_connection": {3}, "sysmon_status": {4, 16}, "process_termination": {5}, "driver_load": {6},
		"image_load": {7}, "create_remote_thread": {8}, "raw_access_thread": {9}, "process_access": {10}, "file_event": {11},
		"registry_add": {12}, "registry_delete": {12}, "registry_set": {13}, "registry_rename": {14}, "registry_event": {12, 13, 14},
		"create_stream_hash": {15}, "pipe_created": {17, 18}, "wmi_event": {19, 20, 21}, "dns_query": {22}, "file_delete": {23, 26},
		"clipboard_capture": {24}, "process_tampering": {25}, "file_delete_detected": {26}, "file_block_executable": {27},
		"file_block_shredding": {28}, "file_executable_detected": {29}, "sysmon_error": {255},
	} {
		category(name, "sysmon", ids, nil)
	}
	category("ps_module", "powershell", []int{4103}, nil)
	category("ps_script", "powershell", []int{4104}, nil)
	category("ps_classic_start", "powershell-classic", []int{400}, nil)
	category("ps_classic_provider_start", "powershell-classic", []int{600}, nil)
	category("ps_classic_script", "powershell-classic", []int{800}, nil)
	category("antivirus", "windefend", []int{1006, 1007, 1008, 1009, 1010, 1011, 1012, 1017, 1018, 1019, 1115, 1116},
		map[string]string{"Signature": "ThreatName", "Filename": "Path"})
	return c
}
