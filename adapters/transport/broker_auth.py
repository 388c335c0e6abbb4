"""What a real deployment's mosquitto needs: per-node credentials and topic ACLs.

Frames are signed, so the broker's accounts are not what makes a sender's identity; they
keep strangers off the broker altogether (no account, no connection: the flood of throw-away
keys of issue 15 needs an account the operator can revoke) and keep nodes in their lanes:

- every node logs in with its peer id as user name and a password the operator derives from
  one broker secret (`node_password`), so issuing a password for a newly registered node needs
  no other state;
- the password file holds PBKDF2-SHA512 hashes in mosquitto 2's `$7$` format, as
  `mosquitto_passwd` writes them;
- the ACL lets every node publish and read its network's gossip topics, send requests to any
  inbox, and read only its own inbox (`%u`: the user name, which is its peer id), so nobody
  reads another's requests or answers, nor touches another network's topics.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable, Mapping

from adapters.transport.names import check_network_id, check_segment
from protocol.encoding import Writer

PASSWORD_DOMAIN = b"seedswarm/mqtt-password/1\x00"
PBKDF2_ITERATIONS = 101
"""mosquitto_passwd's own count for `$7$` hashes (mosquitto 2.0)."""
SALT_BYTES = 12
SECRET_BYTES = 32


def new_secret() -> bytes:
    """A fresh broker secret (keep it with the operator: it issues every node's password)."""
    return os.urandom(SECRET_BYTES)


def node_password(secret: bytes, peer_id: str) -> str:
    """The broker password of the node `peer_id` (its user name) under `secret`."""
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"a broker secret has at least {SECRET_BYTES} bytes")
    check_segment(peer_id, "peer id")
    digest = hmac.new(secret, PASSWORD_DOMAIN + peer_id.encode("ascii"), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii").rstrip("=")


def password_line(
    user: str, password: str, *, salt: Callable[[int], bytes] = os.urandom
) -> str:
    """One line of a mosquitto password file: `user:$7$101$<salt>$<PBKDF2-SHA512 hash>`."""
    check_segment(user, "broker user")
    raw_salt = salt(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), raw_salt,
                                 PBKDF2_ITERATIONS)
    encoded = [base64.b64encode(part).decode("ascii") for part in (raw_salt, digest)]
    return f"{user}:$7${PBKDF2_ITERATIONS}${encoded[0]}${encoded[1]}"


def password_file(credentials: Mapping[str, str]) -> str:
    """A mosquitto password file for `credentials` (user name -> password)."""
    return "".join(f"{password_line(user, pw)}\n" for user, pw in sorted(credentials.items()))


def acl_file(network_id: str, root: str = "seedswarm") -> str:
    """A mosquitto ACL giving every logged-in node exactly what the MQTT transport uses."""
    check_network_id(network_id)
    check_segment(root, "MQTT root")
    prefix = f"{root}/{network_id}"
    return "\n".join([
        "# seedswarm: every node logs in as its peer id (%u)",
        f"pattern readwrite {prefix}/t/#",
        f"pattern write {prefix}/rpc/+",
        f"pattern read {prefix}/rpc/%u",
        "",
    ])


ACCOUNT_REQUEST_DOMAIN = "seedswarm/broker-account/1"
ACCOUNT_REQUEST_MAX_AGE_S = 120
"""How far a password request's time may be from the issuer's clock (either way)."""


def account_request_bytes(network_id: str, peer_id: str, issued_at: int) -> bytes:
    """What a node signs with its node key to ask for its broker password: the network, its
    peer id (its user name) and the Unix second it asks at, so that the signature serves for
    nothing else and a copied request goes stale."""
    w = Writer()
    w.text(ACCOUNT_REQUEST_DOMAIN)
    w.text(network_id)
    w.text(peer_id)
    w.text(str(issued_at))
    return w.getvalue()


def auth_config_lines(password_path: str, acl_path: str) -> list[str]:
    """The mosquitto.conf lines that turn accounts and the ACL on."""
    return ["allow_anonymous false", f"password_file {password_path}", f"acl_file {acl_path}"]
