"""A real Dovecot IMAP server on 127.0.0.1 for tests and benchmarks.

`DovecotServer.start()` writes a minimal configuration into its own directory (Dovecot 2.3:
passwd-file users, Maildir storage, a plain/STARTTLS port and an implicit-TLS port with a
self-signed certificate made at start-up), runs `dovecot -F -c CONF` and waits for the banner.
`stop()` ends that process by its pid. Users are added at any time with `add_user()`: Dovecot
re-reads the passwd-file when it changes.

Dovecot never runs mail processes as root, so as root the mail files belong to the `mail` user
(or `nobody`), and the login and internal processes run as the packaged `dovenull` and `dovecot`
users. As another user everything runs as that user.
"""

from __future__ import annotations

import datetime
import grp
import imaplib
import ipaddress
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


USERS = 200  # accounts created at start; each test takes a fresh one


def dovecot_missing() -> str | None:
    """Why Dovecot cannot run here, or None when it can."""
    if not Path(DOVECOT).exists():
        return "Dovecot is not installed (Debian package dovecot-imapd)"
    version = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True, check=False)
    if version.returncode != 0:
        return f"dovecot --version failed: {version.stderr.strip()[:200]}"
    if not version.stdout.startswith("2.3"):
        return f"the test configuration is written for Dovecot 2.3, found {version.stdout.strip()}"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Account:
    user: str
    password: str = field(repr=False)


@dataclass
class DovecotServer:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="leakwatch-dovecot-")))
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)  # plain, with STARTTLS
    tls_port: int = field(default_factory=free_port)  # implicit TLS
    process: subprocess.Popen[bytes] | None = None
    cert_file: Path = field(init=False)
    _accounts: list[Account] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.cert_file = self.root / "cert.pem"

    def start(self) -> DovecotServer:
        self.root.chmod(0o755)  # mail processes run as another user and must reach mail/
        for name in ("run", "state", "mail"):
            (self.root / name).mkdir(exist_ok=True)
        mail_uid, mail_gid, login_user, internal_user, internal_group = _identities()
        os.chown(self.root / "mail", mail_uid, mail_gid)
        self._accounts = [Account(f"user{n}", secrets.token_urlsafe(12)) for n in range(USERS)]
        (self.root / "users").write_text(
            "".join(f"{a.user}:{{PLAIN}}{a.password}::::::\n" for a in self._accounts)
        )
        (self.root / "users").chmod(0o644)
        _write_certificate(self.cert_file, self.root / "key.pem")
        (self.root / "dovecot.conf").write_text(
            _CONFIG.format(
                root=self.root,
                port=self.port,
                tls_port=self.tls_port,
                uid=mail_uid,
                gid=mail_gid,
                first_uid=min(mail_uid, 500) or 1,
                first_gid=min(mail_gid, 500) or 1,
                login_user=login_user,
                internal_user=internal_user,
                internal_group=internal_group,
            )
        )
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start-up: {self._failure()}")
            if _banner(self.host, self.port) and _banner(self.host, self.tls_port, tls=True):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not answer within 15 s: {self._failure()}")

    def _failure(self) -> str:
        log = self.root / "dovecot.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        if self.process is not None and self.process.stderr is not None and self.process.poll():
            text += self.process.stderr.read().decode(errors="replace")
        return text.strip()[-2000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def add_user(self) -> Account:
        """The next unused account (written at start: Dovecot may cache the passwd-file)."""
        if not self._accounts:
            raise RuntimeError(f"all {USERS} test accounts are in use")
        return self._accounts.pop(0)

    def client(self, account: Account) -> imaplib.IMAP4:
        """A logged-in plain client, for placing and inspecting mail in tests."""
        connection = imaplib.IMAP4(self.host, self.port, timeout=30)
        try:
            connection.login(account.user, account.password)
        except BaseException:
            connection.shutdown()
            raise
        return connection

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate."""
        context = ssl.create_default_context(cafile=str(self.cert_file))
        return context


def append(connection: imaplib.IMAP4, folder: str, raw: bytes, flags: str = "") -> int:
    """APPEND a mail and return its UID (Dovecot answers with APPENDUID)."""
    when = imaplib.Time2Internaldate(time.time())
    typ, data = connection.append(_quoted(folder), f"({flags})" if flags else None, when, raw)
    if typ != "OK":
        raise RuntimeError(f"APPEND failed: {data!r}")
    code = connection.untagged_responses.pop("APPENDUID", None)
    if code:
        return int(code[-1].split()[-1])
    text = data[0].decode() if data and isinstance(data[0], bytes) else ""
    return int(text.split("APPENDUID", 1)[1].split()[1].rstrip("]"))


def create(connection: imaplib.IMAP4, folder: str) -> None:
    typ, data = connection.create(_quoted(folder))
    if typ != "OK":
        raise RuntimeError(f"CREATE failed: {data!r}")


def delete(connection: imaplib.IMAP4, folder: str) -> None:
    typ, data = connection.delete(_quoted(folder))
    if typ != "OK":
        raise RuntimeError(f"DELETE failed: {data!r}")


def flags_of(connection: imaplib.IMAP4, folder: str, uid: int) -> str:
    connection.select(_quoted(folder), readonly=True)
    _typ, data = connection.uid("FETCH", str(uid), "(FLAGS)")
    return b" ".join(d for d in data if isinstance(d, bytes)).decode()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _identities() -> tuple[int, int, str, str, str]:
    """(mail uid, mail gid, login user, internal user, internal group) for this process."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        group = grp.getgrgid(me.pw_gid).gr_name
        return me.pw_uid, me.pw_gid, me.pw_name, me.pw_name, group
    owner = _user("mail") or _user("nobody")
    if owner is None:
        raise RuntimeError("no unprivileged user (mail or nobody) to own the test mail")
    login = "dovenull" if _user("dovenull") else owner.pw_name
    internal = _user("dovecot") or owner
    return (
        owner.pw_uid, owner.pw_gid, login, internal.pw_name,
        grp.getgrgid(internal.pw_gid).gr_name,
    )  # fmt: skip


def _user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _banner(host: str, port: int, tls: bool = False) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            if tls:
                context = ssl._create_unverified_context()
                with context.wrap_socket(sock) as wrapped:
                    return wrapped.recv(64).startswith(b"* OK")
            return sock.recv(64).startswith(b"* OK")
    except (OSError, ssl.SSLError):
        return False


def _write_certificate(cert_file: Path, key_file: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)


_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {first_uid}
first_valid_gid = {first_gid}
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u/Maildir
mail_fsync = never
namespace inbox {{
  inbox = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
  default_fields = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
"""
