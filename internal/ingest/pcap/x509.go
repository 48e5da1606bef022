package pcap

import (
	"crypto/dsa" //nolint:staticcheck // SA1019: DSA certificates are still seen on the wire
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
)

// parseX509 reads a DER certificate into the fields of Zeek's x509.log.
// A certificate Go's parser refuses keeps its fingerprint (set by the
// caller) and what could be read.
func parseX509(der []byte) event.X509 {
	var x event.X509
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return x
	}
	x.Version = event.Some(uint64(c.Version)) //nolint:gosec // G115: 1 to 3
	x.Serial = serialHex(c.SerialNumber)
	x.Subject = dnString(c.RawSubject)
	x.Issuer = dnString(c.RawIssuer)
	x.NotValidBefore, x.NotValidAfter = event.Some(c.NotBefore.UTC()), event.Some(c.NotAfter.UTC())
	x.SigAlg = sigAlgName(c.SignatureAlgorithm)
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		x.KeyAlg, x.KeyType = "rsaEncryption", "rsa"
		x.KeyLength = event.Some(uint64(k.N.BitLen())) //nolint:gosec // G115: a bit length
		x.Exponent = strconv.Itoa(k.E)
	case *ecdsa.PublicKey:
		x.KeyAlg, x.KeyType = "id-ecPublicKey", "ecdsa"
		x.KeyLength = event.Some(uint64(k.Curve.Params().BitSize)) //nolint:gosec // G115: a bit length
		x.Curve = map[string]string{"P-224": "secp224r1", "P-256": "prime256v1", "P-384": "secp384r1", "P-521": "secp521r1"}[k.Curve.Params().Name]
	case *dsa.PublicKey:
		x.KeyAlg, x.KeyType = "dsaEncryption", "dsa"
		x.KeyLength = event.Some(uint64(k.P.BitLen())) //nolint:gosec // G115: a bit length
	case ed25519.PublicKey:
		x.KeyAlg, x.KeyType = "ED25519", "ed25519"
		x.KeyLength = event.Some(uint64(256))
	default:
		// Algorithms Go does not know (ML-DSA, ...): named by their OID.
		var spki struct {
			Algo pkix.AlgorithmIdentifier
			Key  asn1.BitString
		}
		if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err == nil {
			if n, ok := pqNames[spki.Algo.Algorithm.String()]; ok {
				x.KeyAlg, x.KeyType = n, n
				x.KeyLength = event.Some(uint64(spki.Key.BitLength)) //nolint:gosec // G115: a bit length
			}
		}
	}
	if x.SigAlg == "" {
		var outer struct {
			TBS  asn1.RawValue
			Algo pkix.AlgorithmIdentifier
		}
		if _, err := asn1.Unmarshal(c.Raw, &outer); err == nil {
			x.SigAlg = pqNames[outer.Algo.Algorithm.String()]
		}
	}
	x.SANDNS, x.SANEmail = c.DNSNames, c.EmailAddresses
	for _, u := range c.URIs {
		x.SANURI = append(x.SANURI, u.String())
	}
	for _, ip := range c.IPAddresses {
		if a, ok := netipFromIP(ip); ok {
			x.SANIP = append(x.SANIP, a)
		}
	}
	if c.BasicConstraintsValid {
		x.BasicConstraintCA = event.Some(c.IsCA)
		if c.MaxPathLen > 0 || c.MaxPathLenZero {
			x.BasicConstraintPL = event.Some(uint64(max(c.MaxPathLen, 0)))
		}
	}
	return x
}

// pqNames names the post-quantum signature algorithms (FIPS 204).
var pqNames = map[string]string{
	"2.16.840.1.101.3.4.3.17": "ML-DSA-44", "2.16.840.1.101.3.4.3.18": "ML-DSA-65", "2.16.840.1.101.3.4.3.19": "ML-DSA-87",
}

// serialHex prints a serial number as OpenSSL does: upper-case hex of
// its bytes.
func serialHex(n *big.Int) string {
	if n == nil {
		return ""
	}
	s := strings.ToUpper(hex.EncodeToString(new(big.Int).Abs(n).Bytes()))
	if s == "" {
		s = "00"
	}
	if n.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// Short names of the distinguished-name attributes, as OpenSSL prints them.
var dnNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"2.5.4.5": "serialNumber", "2.5.4.9": "street", "2.5.4.4": "SN", "2.5.4.42": "GN", "2.5.4.12": "title",
	"2.5.4.43": "initials", "2.5.4.44": "generationQualifier", "2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym",
	"2.5.4.17": "postalCode", "2.5.4.15": "businessCategory", "2.5.4.13": "description", "2.5.4.97": "organizationIdentifier",
	"1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
	"1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC", "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST", "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
}

// dnString prints a DER distinguished name as OpenSSL's RFC 2253 form:
// the last RDN first, attributes by short name, multi-valued RDNs joined by "+".
func dnString(raw []byte) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 {
		return ""
	}
	parts := make([]string, 0, len(seq))
	for i := len(seq) - 1; i >= 0; i-- {
		var attrs []string
		for _, a := range seq[i] {
			name, known := dnNames[a.Type.String()]
			var val string
			if s, isStr := a.Value.(string); isStr && known {
				val = escapeDN(s)
			} else {
				// Unknown attributes are dumped as their DER, as OpenSSL does.
				if !known {
					name = a.Type.String()
				}
				der, _ := asn1.Marshal(a.Value)
				val = "#" + strings.ToUpper(hex.EncodeToString(der))
			}
			attrs = append(attrs, name+"="+val)
		}
		parts = append(parts, strings.Join(attrs, "+"))
	}
	return strings.Join(parts, ",")
}

// escapeDN escapes an attribute value as RFC 2253 asks.
func escapeDN(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case strings.IndexByte(`,+"\<>;`, c) >= 0,
			(c == '#' || c == ' ') && i == 0,
			c == ' ' && i == len(s)-1:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func sigAlgName(a x509.SignatureAlgorithm) string {
	switch a {
	case x509.MD2WithRSA:
		return "md2WithRSAEncryption"
	case x509.MD5WithRSA:
		return "md5WithRSAEncryption"
	case x509.SHA1WithRSA:
		return "sha1WithRSAEncryption"
	case x509.SHA256WithRSA:
		return "sha256WithRSAEncryption"
	case x509.SHA384WithRSA:
		return "sha384WithRSAEncryption"
	case x509.SHA512WithRSA:
		return "sha512WithRSAEncryption"
	case x509.DSAWithSHA1:
		return "dsaWithSHA1"
	case x509.DSAWithSHA256:
		return "dsa_with_SHA256"
	case x509.ECDSAWithSHA1:
		return "ecdsa-with-SHA1"
	case x509.ECDSAWithSHA256:
		return "ecdsa-with-SHA256"
	case x509.ECDSAWithSHA384:
		return "ecdsa-with-SHA384"
	case x509.ECDSAWithSHA512:
		return "ecdsa-with-SHA512"
	case x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS:
		return "rsassaPss"
	case x509.PureEd25519:
		return "ED25519"
	}
	return ""
}

// certMatches reports whether a server name is one the certificate is
// for: a SAN DNS name (or its CN without SANs), wildcards matching one label.
func certMatches(x *event.X509, name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	names := x.SANDNS
	if len(names) == 0 {
		for _, p := range strings.Split(x.Subject, ",") {
			if cn, ok := strings.CutPrefix(p, "CN="); ok {
				names = append(names, cn)
			}
		}
	}
	for _, n := range names {
		n = strings.ToLower(n)
		if n == name {
			return true
		}
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if _, after, ok := strings.Cut(name, "."); ok && after == rest {
				return true
			}
		}
	}
	return false
}

func netipFromIP(ip []byte) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}
