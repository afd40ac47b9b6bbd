//! Test certificates made at run time with rcgen (no private key is checked
//! in): a certificate authority and the server and client certificates it
//! signs, as PEM.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    SanType,
};

/// A test certificate authority.
pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and key signed by an [`Authority`], as PEM.
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

impl Authority {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for DNS `names`.
    pub fn server(&self, names: &[&str]) -> Leaf {
        self.leaf(
            names.iter().map(|n| n.to_string()).collect(),
            &[],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose identity is the URI `uri`.
    pub fn client(&self, uri: &str) -> Leaf {
        self.leaf(Vec::new(), &[uri], ExtendedKeyUsagePurpose::ClientAuth)
    }

    pub fn leaf(&self, dns: Vec<String>, uris: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::new(dns).unwrap();
        for uri in uris {
            params.subject_alt_names.push(SanType::URI(
                rcgen::string::Ia5String::try_from(uri.to_string()).unwrap(),
            ));
        }
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &*self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}
