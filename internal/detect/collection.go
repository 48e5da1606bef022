package detect

import "strings"

// MailboxExport reports whether a command line (or PowerShell script
// block) exports or copies whole mailboxes with Exchange's own cmdlets:
// New-MailboxExportRequest, Export-Mailbox, or Search-Mailbox with a
// -TargetMailbox that receives what it finds. The host detector flags it;
// attribution lists it among what was taken.
func MailboxExport(cmd string) bool {
	lc := strings.ToLower(cmd)
	return strings.Contains(lc, "new-mailboxexportrequest") || strings.Contains(lc, "export-mailbox") ||
		(strings.Contains(lc, "search-mailbox") && strings.Contains(lc, "-targetmailbox"))
}
