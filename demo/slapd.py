"""A throw-away OpenLDAP server for the tests (and the LDAP benchmark): Debian's ``slapd`` with
its own configuration and data directory, on free loopback ports, started and stopped here.

* ``ldap://127.0.0.1:PORT`` answers plain LDAP and StartTLS, ``ldaps://127.0.0.1:TLS_PORT``
  LDAP over TLS; the server certificate (for ``127.0.0.1`` and ``localhost``) is signed by a
  throw-away CA made with the ``cryptography`` package, whose PEM is ``ca_file``.
* The suffix is ``dc=tollgate,dc=test`` with ``ou=people``, ``ou=groups`` and ``ou=services``;
  ``cn=tollgate,ou=services`` is a service account that may write groups only (ACL), the
  ``rootdn`` (``admin_dn``) seeds data.

No mocks: the connector and the directory source talk to this server over real sockets.
"""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SUFFIX = "dc=tollgate,dc=test"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "tollgate-ldap-admin-Pa55"  # noqa: S105 - a throw-away test server
SERVICE_DN = f"cn=tollgate,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "tollgate-ldap-demo-Pa55"  # noqa: S105 - a throw-away test server
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"


def escape_rdn(value: str) -> str:
    from ldap3.utils.dn import escape_rdn as escape

    return escape(value)


def available() -> bool:
    return Path(SLAPD).exists() and (SCHEMA_DIR / "core.schema").exists()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost; returns (ca, cert, key) paths."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    # A fixed, wide validity window: the tests freeze Python's clock, OpenSSL uses the real one.
    start, end = dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tollgate test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


_CONFIG = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
modulepath {modules}
moduleload back_mdb
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
sizelimit unlimited
database mdb
maxsize 1073741824
suffix "{suffix}"
rootdn "{admin_dn}"
rootpw {admin_pw}
directory {dir}/data
index objectClass eq
index uid,mail,cn eq
index member,memberUid eq
{limits}access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to dn.subtree="{groups}"
    by dn.exact="{service_dn}" write
    by users read
access to *
    by users read
    by anonymous auth
"""


@dataclass
class Slapd:
    """A running throw-away slapd. Use :func:`start` and :meth:`stop` (or the context)."""

    directory: Path
    port: int
    tls_port: int
    ca_file: Path
    process: subprocess.Popen | None = None
    log: list[str] = field(default_factory=list)

    suffix = SUFFIX
    admin_dn = ADMIN_DN
    admin_password = ADMIN_PASSWORD
    service_dn = SERVICE_DN
    service_password = SERVICE_PASSWORD
    people = PEOPLE
    groups = GROUPS

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def admin(self):
        """An ldap3 connection bound as the rootdn (plain LDAP: seeding, never the product)."""
        import ldap3

        conn = ldap3.Connection(
            ldap3.Server("127.0.0.1", port=self.port, get_info=ldap3.NONE),
            user=self.admin_dn,
            password=self.admin_password,
            auto_bind=ldap3.AUTO_BIND_NO_TLS,
            receive_timeout=30,
        )
        return conn

    def reset(self) -> None:
        """Delete everything below the suffix and recreate the three organisational units and
        the service account (each test starts from the same tree)."""
        import ldap3

        conn = self.admin()
        try:
            dns: list[str] = []
            for entry in conn.extend.standard.paged_search(
                self.suffix,
                "(objectClass=*)",
                search_scope=ldap3.SUBTREE,
                attributes=["1.1"],
                paged_size=1000,
                generator=True,
            ):
                if entry.get("type") == "searchResEntry":
                    dns.append(entry["dn"])
            for dn in sorted(dns, key=lambda d: d.count(","), reverse=True):
                conn.delete(dn)
            conn.add(
                self.suffix,
                ["dcObject", "organization"],
                {"dc": "tollgate", "o": "Tollgate tests"},
            )
            for ou in ("people", "groups", "services"):
                conn.add(f"ou={ou},{self.suffix}", ["organizationalUnit"], {"ou": ou})
            conn.add(
                self.service_dn,
                ["applicationProcess", "simpleSecurityObject"],
                {"cn": "tollgate", "userPassword": self.service_password},
            )
            if conn.result["result"] != 0:
                raise RuntimeError(f"slapd seed failed: {conn.result}")
        finally:
            conn.unbind()

    def add_person(self, uid: str, **attrs) -> str:
        from ldap3.utils.dn import escape_rdn

        dn = f"uid={escape_rdn(uid)},{self.people}"
        values = {"uid": uid, "cn": attrs.pop("cn", uid), "sn": attrs.pop("sn", uid)}
        values.update({k: v for k, v in attrs.items() if v is not None})
        conn = self.admin()
        try:
            if not conn.add(dn, ["inetOrgPerson"], values):
                raise RuntimeError(f"cannot add {dn}: {conn.result}")
        finally:
            conn.unbind()
        return dn

    def add_group(self, cn: str, *, kind: str = "groupOfNames", members=()) -> str:
        from ldap3.utils.dn import escape_rdn

        dn = f"cn={escape_rdn(cn)},{self.groups}"
        conn = self.admin()
        try:
            if kind == "posixGroup":
                attrs = {"cn": cn, "gidNumber": 5000}
                if members:
                    attrs["memberUid"] = list(members)
            else:
                attrs = {"cn": cn, "member": list(members) or [""]}
            if not conn.add(dn, [kind], attrs):
                raise RuntimeError(f"cannot add {dn}: {conn.result}")
        finally:
            conn.unbind()
        return dn

    def values(self, dn: str, attribute: str) -> list[str]:
        import ldap3

        conn = self.admin()
        try:
            conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=[attribute])
            if not conn.entries:
                return []
            return [str(v) for v in conn.entries[0][attribute].values]
        finally:
            conn.unbind()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def restart(self, *, timeout: float = 20.0) -> None:
        """Start this (stopped) server again on the same ports with the same data."""
        self.stop()
        _launch(self, timeout=timeout)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Slapd:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


# Test servers only: the service account sees at most 3 entries per plain search (so a test
# proves that the paged results control is what reads a larger base), any number through paging.
_TEST_LIMITS = 'limits dn.exact="{service_dn}" size.soft=3 size.hard=3 size.prtotal=unlimited\n'


def _write_config(directory: Path, *, test_limits: bool) -> Path:
    (directory / "data").mkdir(parents=True, exist_ok=True)
    if not (directory / "ca.pem").exists():
        make_tls_files(directory)
    config = directory / "slapd.conf"
    config.write_text(
        _CONFIG.format(
            schema=SCHEMA_DIR,
            modules=MODULE_DIR,
            dir=directory,
            ca=directory / "ca.pem",
            cert=directory / "server.pem",
            key=directory / "server.key",
            suffix=SUFFIX,
            admin_dn=ADMIN_DN,
            admin_pw=ADMIN_PASSWORD,
            groups=GROUPS,
            service_dn=SERVICE_DN,
            limits=_TEST_LIMITS.format(service_dn=SERVICE_DN) if test_limits else "",
        )
    )
    return config


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _launch(server: Slapd, *, timeout: float, test_limits: bool = True) -> None:
    config = _write_config(server.directory, test_limits=test_limits)
    urls = f"ldap://127.0.0.1:{server.port}/ ldaps://127.0.0.1:{server.tls_port}/"
    with open(server.directory / "slapd.log", "ab") as log:
        server.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [SLAPD, "-d", "0", "-f", str(config), "-h", urls],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not (_answers(server.port) and _answers(server.tls_port)):
        if server.process.poll() is not None:
            raise RuntimeError(
                "slapd exited at start: "
                + (server.directory / "slapd.log").read_text(errors="replace")[-2000:]
            )
        if time.monotonic() > deadline:
            raise RuntimeError("slapd did not start listening in time")
        time.sleep(0.05)


def start(*, timeout: float = 20.0) -> Slapd:
    """Start a throw-away slapd on free loopback ports (a fresh temporary directory) and wait
    until it answers; :meth:`Slapd.cleanup` stops it and removes the directory."""
    if not available():
        raise RuntimeError(
            "slapd is not installed: apt-get install slapd ldap-utils (.ci/run does it)"
        )
    directory = Path(tempfile.mkdtemp(prefix="tollgate-slapd-"))
    server = Slapd(
        directory=directory, port=free_port(), tls_port=free_port(), ca_file=directory / "ca.pem"
    )
    try:
        _launch(server, timeout=timeout)
        server.reset()
    except BaseException:
        server.cleanup()
        raise
    return server


def ensure_persistent(directory: Path, *, port: int, tls_port: int, timeout: float = 20.0) -> Slapd:
    """The demo's slapd: data kept in ``directory``, on fixed loopback ports, left running
    (detached) when this process ends. Started when nothing answers on ``port``; the tree is
    created the first time only."""
    if not available():
        raise RuntimeError("slapd is not installed")
    directory = Path(directory).resolve()
    server = Slapd(directory=directory, port=port, tls_port=tls_port, ca_file=directory / "ca.pem")
    if _answers(port) and server.ca_file.exists():
        return server
    directory.mkdir(parents=True, exist_ok=True)
    _launch(server, timeout=timeout, test_limits=False)
    server.process = None  # detached: it outlives this process (stop it with its pid file)
    if not server.values(SUFFIX, "dc"):
        server.reset()
    return server
