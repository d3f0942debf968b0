#!/usr/bin/env python3
"""Self-test for the BookLore OIDC dev provider (devprovider/server.js).

Run from the repository root (or anywhere):

    python devprovider/selftest.py

Needs `node` on PATH, `npm ci` already run in devprovider/, and the Python
`requests` package. It starts the provider itself on free loopback ports and
only ever talks to 127.0.0.1 / localhost. Exit code 0 means every check passed.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_JS = os.path.join(HERE, "server.js")
REDIRECT_URI = "http://localhost:5000/oauth2-callback"
POST_LOGOUT_URI = "http://localhost:5000/login?logged_out=1"

PASSED = 0
FAILED = 0


class CheckFailed(Exception):
    pass


def check(cond, what):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print(f"  ok   {what}")
    else:
        FAILED += 1
        print(f"  FAIL {what}")
        raise CheckFailed(what)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(token: str):
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), (h, p, s)


def rs256_verify(token: str, jwks: dict) -> str:
    """Verify an RS256 JWT against a JWKS with pure Python; return the kid."""
    header, _payload, (h, p, s) = jwt_parts(token)
    if header.get("alg") != "RS256":
        raise CheckFailed(f"unexpected alg {header.get('alg')}")
    key = next((k for k in jwks["keys"] if k.get("kid") == header.get("kid")), None)
    if key is None:
        raise CheckFailed(f"kid {header.get('kid')} not in jwks")
    n = int.from_bytes(b64url_decode(key["n"]), "big")
    e = int.from_bytes(b64url_decode(key["e"]), "big")
    k = (n.bit_length() + 7) // 8
    em = pow(int.from_bytes(b64url_decode(s), "big"), e, n).to_bytes(k, "big")
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420")
    t = digest_info + hashlib.sha256(f"{h}.{p}".encode()).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    if em != expected:
        raise CheckFailed("RS256 signature does not verify")
    return header["kid"]


# --------------------------------------------------------------------------
# provider process


class DevProvider:
    def __init__(self, config: dict):
        self.config = config
        self.issuer = config["issuer"]
        self.base = f"http://127.0.0.1:{config['port']}"
        self.proc = None
        self.lines: list[str] = []
        self.err_lines: list[str] = []
        self._ready = threading.Event()
        self._tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(config, self._tmp)
        self._tmp.close()

    def start(self, timeout=30):
        node = shutil.which("node")
        if not node:
            sys.exit("selftest: node not found on PATH")
        self.proc = subprocess.Popen(
            [node, SERVER_JS, "--config", self._tmp.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NODE_ENV": "development"},
        )
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err_lines, False), daemon=True).start()
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise CheckFailed("provider did not start:\n" + "\n".join(self.lines + self.err_lines))
        return self

    def _read(self, stream, sink, is_stdout):
        for line in stream:
            sink.append(line.rstrip("\n"))
            if is_stdout and line.startswith(f"devprovider listening on {self.issuer}"):
                self._ready.set()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.unlink(self._tmp.name)
        except OSError:
            pass
        return self.proc.returncode if self.proc else None


# --------------------------------------------------------------------------
# back-channel logout receiver (loopback only)


class BackchannelReceiver:
    def __init__(self):
        self.tokens: list[str] = []
        received = self.tokens

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                received.extend(parse_qs(body).get("logout_token", []))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/backchannel-logout"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------
# the authorization code + PKCE flow, driven like a browser would


def follow_until_redirect_uri(sess, op_base_url, url, redirect_uri, username, password, expect_login=True):
    """Follow redirects from `url`; fill the login form; stop at redirect_uri."""
    saw_login = False
    for _ in range(15):
        r = sess.get(url, allow_redirects=False, timeout=10)
        if r.status_code in (302, 303):
            loc = urljoin(url, r.headers["Location"])
            if loc.startswith(redirect_uri):
                return loc, saw_login
            url = loc
            continue
        if r.status_code == 200 and 'name="username"' in r.text:
            check(not saw_login, "login page shown once")
            saw_login = True
            html = r.text
            check("<title>Pocket ID (demo)</title>" in html, "login page title is 'Pocket ID (demo)'")
            check('name="password"' in html and ">Sign in</button>" in html, "login form has password field and 'Sign in' button")
            action = html.split('<form method="post" action="', 1)[1].split('"', 1)[0]
            post_url = urljoin(url, action)
            # wrong password first
            bad = sess.post(post_url, data={"username": username, "password": password + "-nope"}, allow_redirects=False, timeout=10)
            check(bad.status_code == 200 and "Invalid username or password" in bad.text, "wrong password shows 'Invalid username or password'")
            check(password not in bad.text.split("Demo users:")[1], "hint lists usernames, not passwords")
            r = sess.post(post_url, data={"username": username, "password": password}, allow_redirects=False, timeout=10)
            check(r.status_code == 303, "correct password redirects (303)")
            url = urljoin(post_url, r.headers["Location"])
            continue
        raise CheckFailed(f"unexpected response {r.status_code} for {url}: {r.text[:300]}")
    raise CheckFailed("too many redirects")


def code_flow(op, disco, client, user, *, expect_login=True, sess=None, label="", check_replay=False):
    print(f"- flow: {label}")
    sess = sess or requests.Session()
    verifier = b64url(secrets.token_bytes(32))
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(12)
    nonce = secrets.token_urlsafe(12)
    params = {
        "client_id": client["client_id"],
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email groups",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    auth_url = disco["authorization_endpoint"] + "?" + urlencode(params)
    loc, saw_login = follow_until_redirect_uri(sess, op.base, auth_url, REDIRECT_URI, user["username"], user["password"])
    check(saw_login == expect_login, f"login page {'shown' if expect_login else 'skipped (existing session)'}")
    q = {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}
    check("code" in q, "redirect_uri got a code")
    check(q.get("state") == state, "state round-trips")
    check(q.get("iss") == op.issuer, f"RFC 9207 iss={q.get('iss')}")

    data = {"grant_type": "authorization_code", "code": q["code"], "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    auth = None
    method = client["token_endpoint_auth_method"]
    if method == "none":
        data["client_id"] = client["client_id"]
    elif method == "client_secret_basic":
        auth = (client["client_id"], client["client_secret"])
    elif method == "client_secret_post":
        data["client_id"] = client["client_id"]
        data["client_secret"] = client["client_secret"]
    tr = requests.post(disco["token_endpoint"], data=data, auth=auth, timeout=10)
    check(tr.status_code == 200, f"token endpoint 200 ({method})")
    tok = tr.json()
    check(tok.get("token_type") == "Bearer" and tok.get("access_token") and tok.get("id_token"), "token response has access_token + id_token")


    header, claims, _ = jwt_parts(tok["id_token"])
    jwks = requests.get(disco["jwks_uri"], timeout=10).json()
    kid = rs256_verify(tok["id_token"], jwks)
    check(True, f"ID token RS256 signature verifies (kid {kid})")
    check(claims["iss"] == op.issuer and claims["aud"] == client["client_id"], "ID token iss/aud")
    check(claims["sub"] == user["sub"] and claims.get("nonce") == nonce, "ID token sub/nonce")
    if client.get("backchannel_logout_uri"):
        check("sid" in claims, "ID token has sid (client has backchannel_logout_uri)")
    ui = requests.get(disco["userinfo_endpoint"], headers={"Authorization": f"Bearer {tok['access_token']}"}, timeout=10)
    check(ui.status_code == 200 and ui.json().get("sub") == user["sub"], "userinfo 200 with the access token")
    if check_replay:
        # the code is single use; replaying it revokes what it issued (RFC 6749 4.1.2)
        again = requests.post(disco["token_endpoint"], data=data, auth=auth, timeout=10)
        check(again.status_code == 400 and again.json().get("error") == "invalid_grant", "code cannot be redeemed twice")
        ui2 = requests.get(disco["userinfo_endpoint"], headers={"Authorization": f"Bearer {tok['access_token']}"}, timeout=10)
        check(ui2.status_code == 401, "code replay revoked the access token")
    return sess, tok, claims, header, ui.json()


def pkce_negative(op, disco, client):
    print(f"- PKCE enforcement ({client['client_id']})")
    sess = requests.Session()
    params = {"client_id": client["client_id"], "response_type": "code", "redirect_uri": REDIRECT_URI,
              "scope": "openid", "state": "s1"}
    r = sess.get(disco["authorization_endpoint"] + "?" + urlencode(params), allow_redirects=False, timeout=10)
    loc = r.headers.get("Location", "")
    q = parse_qs(urlsplit(loc).query)
    check(r.status_code in (302, 303) and loc.startswith(REDIRECT_URI) and q.get("error") == ["invalid_request"],
          "authorize without code_challenge -> error=invalid_request")
    params.update(code_challenge="x" * 43, code_challenge_method="plain")
    r = sess.get(disco["authorization_endpoint"] + "?" + urlencode(params), allow_redirects=False, timeout=10)
    q = parse_qs(urlsplit(r.headers.get("Location", "")).query)
    check(q.get("error") == ["invalid_request"], "code_challenge_method=plain rejected")


def logout(op, disco, sess, id_token, receiver, expected_sid):
    print("- RP-initiated logout + back-channel logout")
    params = {"id_token_hint": id_token, "post_logout_redirect_uri": POST_LOGOUT_URI, "state": "bye"}
    r = sess.get(disco["end_session_endpoint"] + "?" + urlencode(params), allow_redirects=False, timeout=10)
    check(r.status_code == 200 and 'id="op.logoutForm"' in r.text, "end_session renders the logout form")
    html = r.text
    action = html.split('id="op.logoutForm" method="post" action="', 1)[1].split('"', 1)[0]
    xsrf = html.split('name="xsrf" value="', 1)[1].split('"', 1)[0]
    # the page auto-submits with logout=yes (id_token_hint given); do what the script does
    r = sess.post(urljoin(r.url, action), data={"xsrf": xsrf, "logout": "yes"}, allow_redirects=False, timeout=10)
    loc = r.headers.get("Location", "")
    check(r.status_code in (302, 303) and loc.startswith(POST_LOGOUT_URI), f"redirects to post_logout_redirect_uri ({loc})")
    check(parse_qs(urlsplit(loc).query).get("state") == ["bye"], "logout state round-trips")
    deadline = time.time() + 5
    while not receiver.tokens and time.time() < deadline:
        time.sleep(0.05)
    check(len(receiver.tokens) >= 1, "back-channel logout_token received")
    _, lt, _ = jwt_parts(receiver.tokens[-1])
    check("http://schemas.openid.net/event/backchannel-logout" in lt.get("events", {}), "logout_token has backchannel-logout event")
    check(lt.get("sid") == expected_sid and lt.get("iss") == op.issuer, "logout_token sid/iss match")


def check_discovery(op):
    print(f"- discovery ({op.issuer})")
    disco = requests.get(op.base + "/.well-known/openid-configuration", timeout=10).json()
    check(disco["issuer"] == op.issuer, "issuer matches config")
    check(disco.get("authorization_response_iss_parameter_supported") is True, "authorization_response_iss_parameter_supported")
    check(disco.get("code_challenge_methods_supported") == ["S256"], "code_challenge_methods_supported == [S256]")
    check(disco.get("end_session_endpoint", "").endswith("/session/end"), "end_session_endpoint /session/end")
    check(disco.get("backchannel_logout_supported") is True, "backchannel_logout_supported")
    check({"openid", "profile", "email", "groups"} <= set(disco["scopes_supported"]), "scopes include groups")
    check({"sub", "preferred_username", "name", "email", "email_verified", "groups"} <= set(disco["claims_supported"]), "claims_supported")
    check("introspection_endpoint" not in disco, "introspection disabled")
    return disco


def main() -> int:
    if not os.path.isdir(os.path.join(HERE, "node_modules", "oidc-provider")):
        print("selftest: devprovider/node_modules missing; run `npm ci` in devprovider/ first", file=sys.stderr)
        return 2

    user = {"sub": "u-reader", "username": "reader", "password": "reader-pw", "email": "reader@example.com",
            "email_verified": True, "name": "Rita Reader", "groups": ["readers"]}
    admin = {"sub": "u-admin", "username": "admin", "password": "admin-pw", "email": "admin@example.com",
             "email_verified": True, "name": "Ada Admin", "groups": ["admins", "readers"]}
    receiver = BackchannelReceiver()
    public = {"client_id": "booklore", "client_secret": None, "redirect_uris": [REDIRECT_URI],
              "post_logout_redirect_uris": [POST_LOGOUT_URI], "token_endpoint_auth_method": "none",
              "backchannel_logout_uri": receiver.url}
    basic = {"client_id": "booklore-basic", "client_secret": "s3cret-basic", "redirect_uris": [REDIRECT_URI],
             "post_logout_redirect_uris": [POST_LOGOUT_URI], "token_endpoint_auth_method": "client_secret_basic",
             "backchannel_logout_uri": None}
    post = {"client_id": "booklore-post", "client_secret": "s3cret-post", "redirect_uris": [REDIRECT_URI],
            "post_logout_redirect_uris": [POST_LOGOUT_URI], "token_endpoint_auth_method": "client_secret_post",
            "backchannel_logout_uri": None}

    providers = []
    try:
        # ---- provider 1: groups in the ID token, issuer on 127.0.0.1 ------
        port = free_port()
        keys_file = os.path.join(tempfile.mkdtemp(prefix="devprovider-"), "keys.json")
        op = DevProvider({"port": port, "host": "127.0.0.1", "issuer": f"http://127.0.0.1:{port}",
                          "clients": [public, basic, post], "users": [user, admin],
                          "groups_in_id_token": True, "rotate_keys_file": keys_file}).start()
        providers.append(op)
        print(f"started provider 1: {op.lines[0]}")
        disco = check_discovery(op)
        jwks = requests.get(disco["jwks_uri"], timeout=10).json()
        check(len(jwks["keys"]) == 1 and all("d" not in k for k in jwks["keys"]), "jwks: one public key")

        pkce_negative(op, disco, public)
        pkce_negative(op, disco, basic)

        sess, tok, claims, _, ui = code_flow(op, disco, public, user, label="public client, PKCE S256")
        check(claims.get("preferred_username") == "reader" and claims.get("name") == "Rita Reader", "ID token has preferred_username + name")
        check(claims.get("email") == user["email"] and claims.get("email_verified") is True, "ID token has email + email_verified")
        check(claims.get("groups") == ["readers"], "ID token has groups")
        cookies = op_set_cookies(op, disco, public)
        check(cookies and all("secure" not in c.lower() for c in cookies), "cookies are not Secure (plain http works)")
        check(all("samesite=lax" in c.lower() for c in cookies), "cookies are SameSite=Lax")

        check(ui.get("groups") == ["readers"] and ui.get("preferred_username") == "reader", "userinfo has groups + preferred_username")

        _, tok_b, claims_b, _, _ = code_flow(op, disco, basic, admin, label="confidential client, client_secret_basic",
                                             check_replay=True)
        check(claims_b.get("preferred_username") == "admin" and claims_b.get("groups") == ["admins", "readers"], "admin claims in ID token")
        bad = requests.post(disco["token_endpoint"], data={"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT_URI,
                                                           "code_verifier": "y" * 43}, auth=("booklore-basic", "wrong"), timeout=10)
        check(bad.status_code == 401 and bad.json().get("error") == "invalid_client", "wrong client secret -> invalid_client")
        code_flow(op, disco, post, user, label="confidential client, client_secret_post")

        print("- key rotation")
        old_kid = jwks["keys"][0]["kid"]
        rr = requests.post(op.base + "/__dev/rotate-keys", timeout=30)
        check(rr.status_code == 200, "POST /__dev/rotate-keys 200")
        new_kid = rr.json()["signing_kid"]
        jwks2 = requests.get(disco["jwks_uri"], timeout=10).json()
        kids = [k["kid"] for k in jwks2["keys"]]
        check(kids == [new_kid, old_kid], f"jwks now has two keys, new first: {kids}")
        check(rs256_verify(tok["id_token"], jwks2) == old_kid, "old ID token still verifies against published old key")
        with open(keys_file) as fh:
            check([k["kid"] for k in json.load(fh)["keys"]] == kids, "rotate_keys_file holds both private keys")
        # same browser session: no login page again (sessions survive rotation)
        _, tok3, claims3, header3, _ = code_flow(op, disco, public, user, expect_login=False, sess=sess,
                                              label="after rotation, same browser session")
        check(header3["kid"] == new_kid, "new ID token signed with the new key")

        logout(op, disco, sess, tok3["id_token"], receiver, claims3["sid"])
        code_flow(op, disco, public, user, expect_login=True, sess=sess, label="after logout the login page is back")

        rc = op.stop()
        check(rc == 0, "provider 1 exits 0 on SIGTERM")
        noisy = [line for line in op.err_lines if line.lstrip().startswith("at ")]
        check(not noisy, "no stack traces on stderr")

        # ---- provider 2: conformIdTokenClaims, issuer on localhost --------
        port2 = free_port()
        op2 = DevProvider({"port": port2, "host": "127.0.0.1", "issuer": f"http://localhost:{port2}",
                           "clients": [public], "users": [user], "groups_in_id_token": False,
                           "rotate_keys_file": None}).start()
        providers.append(op2)
        print(f"started provider 2: {op2.lines[0]}")
        disco2 = requests.get(f"http://localhost:{port2}/.well-known/openid-configuration", timeout=10).json()
        check(disco2["issuer"] == op2.issuer and disco2["authorization_endpoint"].startswith(f"http://localhost:{port2}/"),
              "localhost issuer and endpoints")
        _, tok4, claims4, _, ui = code_flow(op2, disco2, public, user, label="groups_in_id_token=false (localhost)")
        check(not ({"preferred_username", "email", "groups", "name"} & set(claims4)), "ID token has no scope claims")
        check(ui.get("preferred_username") == "reader" and ui.get("email") == user["email"] and ui.get("groups") == ["readers"],
              "userinfo has preferred_username, email, groups")
        check(ui.get("sub") == user["sub"], "userinfo sub")
        check(op2.stop() == 0, "provider 2 exits 0 on SIGTERM")
    except CheckFailed as exc:
        print(f"\nselftest FAILED: {exc}")
        for op in providers:
            op.stop()
            if op.err_lines:
                print(f"--- stderr of provider {op.issuer} ---")
                print("\n".join(op.err_lines))
        print(f"{PASSED} passed, {max(FAILED, 1)} failed")
        return 1
    finally:
        for op in providers:
            op.stop()
        receiver.close()

    print(f"\n{PASSED} passed, {FAILED} failed")
    return 0 if FAILED == 0 else 1


def op_set_cookies(op, disco, client):
    """Start a fresh authorization and return the Set-Cookie headers seen."""
    verifier = b64url(secrets.token_bytes(32))
    params = {"client_id": client["client_id"], "response_type": "code", "redirect_uri": REDIRECT_URI,
              "scope": "openid", "state": "c", "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
              "code_challenge_method": "S256"}
    r = requests.get(disco["authorization_endpoint"] + "?" + urlencode(params), allow_redirects=False, timeout=10)
    raw = r.raw.headers.getlist("Set-Cookie") if hasattr(r.raw.headers, "getlist") else []
    return raw


if __name__ == "__main__":
    sys.exit(main())
