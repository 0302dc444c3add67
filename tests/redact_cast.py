"""The cast of the redaction tests: one planted secret of every supported shape, and harmless look-alikes.

Token bodies are generated (a fixed seed), so no real credential is written down; each entry is
``(name, text as an app would log it, the parts of it that must never be seen)``.
"""

from __future__ import annotations

import random
import string

_RANDOM = random.Random(11)
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
UPPER_DIGITS = string.ascii_uppercase + string.digits


def body(length: int, alphabet: str = ALNUM) -> str:
    """A random token body (mixed case and digits guaranteed for the default alphabet)."""
    while True:
        text = "".join(_RANDOM.choice(alphabet) for _ in range(length))
        if alphabet != ALNUM or (any(c.isupper() for c in text) and any(c.isdigit() for c in text)):
            return text


AWS_ID = "AKIA" + body(16, UPPER_DIGITS)
AWS_SECRET = body(18) + "/" + body(11) + "+" + body(9)  # 40 characters, as AWS writes them
STS_TOKEN = "IQoJb3JpZ2luX2VjE" + body(120)

#: Provider tokens, each logged bare.
TOKENS: list[tuple[str, str]] = [
    ("github pat", "ghp_" + body(36)),
    ("github oauth", "gho_" + body(36)),
    ("github fine-grained", "github_pat_" + body(22) + "_" + body(59)),
    ("gitlab pat", "glpat-" + body(20)),
    ("gitlab deploy", "gldt-" + body(20)),
    ("slack bot", "xoxb-" + body(12, string.digits) + "-" + body(13, string.digits) + "-" + body(24)),
    ("slack app-level", "xapp-1-A" + body(10, UPPER_DIGITS) + "-" + body(13, string.digits) + "-" + body(64, HEX)),
    ("stripe live", "sk_live_" + body(24)),
    ("stripe restricted", "rk_test_" + body(24)),
    ("stripe webhook", "whsec_" + body(32)),
    ("aws access key id", AWS_ID),
    ("google api key", "AIza" + body(35)),
    ("google oauth secret", "GOCSPX-" + body(28)),
    ("google access token", "ya29." + body(60)),
    ("twilio", "SK" + body(32, HEX)),
    ("sendgrid", "SG." + body(22) + "." + body(43)),
    ("mailgun", "key-" + body(32, HEX)),
    ("mailchimp", body(32, HEX) + "-us14"),
    ("brevo", "xkeysib-" + body(64, HEX) + "-" + body(16)),
    ("npm", "npm_" + body(36)),
    ("pypi", "pypi-AgEIcHlwaS5vcmc" + body(60)),
    ("rubygems", "rubygems_" + body(48, HEX)),
    ("docker hub", "dckr_pat_" + body(27)),
    ("openai legacy", "sk-" + body(20) + "T3BlbkFJ" + body(20)),
    ("openai project", "sk-proj-" + body(100)),
    ("anthropic", "sk-ant-api03-" + body(93) + "AA"),
    ("square access", "sq0atp-" + body(22)),
    ("square secret", "sq0csp-" + body(43)),
    ("braintree", "access_token$production$" + body(16, string.ascii_lowercase + string.digits) + "$" + body(32, HEX)),
    ("shopify", "shpat_" + body(32, HEX)),
    ("plaid", "access-sandbox-" + "-".join(body(n, HEX) for n in (8, 4, 4, 4, 12))),
    ("flutterwave", "FLWSECK_TEST-" + body(32, "abcdefgh0123456789") + "-X"),
    ("digitalocean", "dop_v1_" + body(64, HEX)),
    ("heroku", "HRKU-AA" + body(58)),
    ("vault", "hvs." + body(95)),
    ("doppler", "dp.pt." + body(43)),
    ("databricks", "dapi" + body(32, HEX)),
    ("planetscale", "pscale_tkn_" + body(40)),
    ("supabase", "sbp_" + body(40, HEX)),
    ("fly.io", "fo1_" + body(43)),
    ("sentry", "sntryu_" + body(64, HEX)),
    ("grafana cloud", "glc_" + body(48)),
    ("grafana service account", "glsa_" + body(32) + "_" + body(8, HEX)),
    ("new relic", "NRAK-" + body(27, UPPER_DIGITS)),
    ("hugging face", "hf_" + body(34, string.ascii_letters)),
    ("atlassian", "ATATT3" + body(186)),
    ("linear", "lin_api_" + body(40)),
    ("postman", "PMAK-" + body(24, HEX) + "-" + body(34, HEX)),
    ("pulumi", "pul-" + body(40, HEX)),
    ("age", "AGE-SECRET-KEY-1" + body(58, UPPER_DIGITS)),
    ("telegram bot", body(9, string.digits) + ":AA" + body(33)),
    ("azure ad client secret", body(3) + "8Q~" + body(34)),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
]

#: Payment cards of every issuer (test numbers that pass Luhn).
CARDS: list[tuple[str, str]] = [
    ("visa", "4111 1111 1111 1111"),
    ("visa 13", "4222222222222"),
    ("mastercard", "5555-5555-5555-4444"),
    ("mastercard 2-series", "2223003122003222"),
    ("amex", "3782 822463 10005"),
    ("discover", "6011111111111117"),
    ("jcb", "3566002020360505"),
    ("diners", "36227206271667"),
    ("unionpay", "6200000000000005"),
    ("maestro", "6759649826438453"),
]

#: Secrets written into text: (name, text, needles).
TEXTS: list[tuple[str, str, list[str]]] = [
    ("aws env dump", f"AWS_ACCESS_KEY_ID={AWS_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}", [AWS_ID, AWS_SECRET]),
    ("aws export", f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", [AWS_SECRET]),
    (
        "aws credentials file",
        f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n",
        [AWS_ID, AWS_SECRET],
    ),
    (
        "boto3 call",
        f"boto3.client('s3', aws_access_key_id='{AWS_ID}', aws_secret_access_key='{AWS_SECRET}')",
        [AWS_ID, AWS_SECRET],
    ),
    (
        "sts json",
        f'{{"Credentials": {{"AccessKeyId": "ASIA{body(16, UPPER_DIGITS)}", "SecretAccessKey": "{AWS_SECRET}",'
        f' "SessionToken": "{STS_TOKEN}"}}}}',
        [AWS_SECRET, STS_TOKEN],
    ),
    ("aws secret next to its id", f"using {AWS_ID} {AWS_SECRET}", [AWS_ID, AWS_SECRET]),
    ("query password", "GET /login?user=ann&password=hunter2-q&next=/", ["hunter2-q"]),
    ("query pwd", "/reset?pwd=s3cr3t-pwd", ["s3cr3t-pwd"]),
    ("query access_token", "/cb?access_token=AbC123dEf456&state=x", ["AbC123dEf456"]),
    ("query api_key", "/v1/x?api_key=k3y-v4lu3-123", ["k3y-v4lu3-123"]),
    ("form client_secret", "grant_type=client_credentials&client_secret=cl13nt-s3cr3t", ["cl13nt-s3cr3t"]),
    ("azure sas sig", "/container/blob?sv=2021-08-06&se=2025-01-01&sig=AbCd%2BEf%3D123", ["AbCd%2BEf%3D123"]),
    ("azure account key", f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={body(86)}==;", []),
    ("logfmt", "level=info user=ann password=hunter2-logfmt ok=1", ["hunter2-logfmt"]),
    ("logfmt quoted", 'user=ann password="hunter two" ok=1', ["hunter two"]),
    ("json", '{"user": "ann", "password": "hunter2-json"}', ["hunter2-json"]),
    ("python repr", "{'user': 'ann', 'api_key': 'k-repr-123456'}", ["k-repr-123456"]),
    ("yaml line", "database:\n  password: hunter2-yaml\n", ["hunter2-yaml"]),
    ("cookie header", "Cookie: sessionid=s3ss10n-v4lue; csrftoken=csrf-v4lue", ["s3ss10n-v4lue", "csrf-v4lue"]),
    ("set-cookie header", "Set-Cookie: session=abc123session; Path=/; HttpOnly", ["abc123session"]),
    ("authorization header", "Authorization: Basic dXNlcjpwYXNzd29yZA==", ["dXNlcjpwYXNzd29yZA"]),
    ("django csrf field", "csrfmiddlewaretoken=Xy12Ab34Cd56&amount=10", ["Xy12Ab34Cd56"]),
    ("url credentials", "postgres://app:s3cr3t-db@db.internal:5432/giving", ["s3cr3t-db"]),
    ("slack webhook", "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX", ["T000/B000/XXXXXXXXXXXX"]),
    ("discord webhook", "https://discord.com/api/webhooks/123456789/AbCdEfGh-ijkl", ["AbCdEfGh-ijkl"]),
    ("pem", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----", ["b3BlbnNzaC1rZXk"]),
    ("email", "receipt for jane.doe@example.com", ["jane.doe@"]),
    ("url-encoded email", "/unsubscribe?email=jane.doe%40example.com", ["jane.doe%40"]),
    ("ssn dashes", "ssn 123-45-6789", ["123-45-6789"]),
    ("ssn spaces", "ssn 123 45 6789", ["123 45 6789"]),
    ("ssn dots", "ssn 123.45.6789", ["123.45.6789"]),
    ("iban de", "IBAN DE89 3704 0044 0532 0130 00 EUR", ["DE89 3704 0044 0532 0130 00"]),
    ("iban gb compact", "to GB29NWBK60161331926819", ["GB29NWBK60161331926819"]),
    ("iban nl compact", "to NL91ABNA0417164300", ["NL91ABNA0417164300"]),
    ("iban fr", "FR14 2004 1010 0505 0001 3M02 606", ["FR14 2004 1010 0505 0001 3M02 606"]),
]

#: Every shape as ``(name, text, needles)``.
SHAPES: list[tuple[str, str, list[str]]] = (
    [(name, token, [token]) for name, token in TOKENS]
    + [(f"card {name}", f"card {number} declined", [number]) for name, number in CARDS]
    + TEXTS
)
# Azure's AccountKey needle is its generated body.
SHAPES = [
    (name, text, needles or [text.split("AccountKey=")[1].split(";")[0]]) for name, text, needles in SHAPES
]

#: Values that look like secrets and are not: none may change.
LOOK_ALIKES: list[str] = [
    "1733200000000",  # epoch milliseconds
    '{"ts": 1733200000000, "ok": true}',
    "ISBN 978-3-16-148410-0",
    "isbn 9783161484100",
    "thread 140234567890123",
    "5f3c1c1e-8f4a-4f53-9a52-411111111111",  # uuid holding a Luhn-valid digit run
    "9f8e7d6c5b4a3f2e4242424242424242",  # 32-hex id holding a Luhn-valid digit run
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",  # sha-1
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # sha-256
    "release 1.4.2, build 2025.11.01-3",
    "v2.10.0-rc.1",
    "total 1234.56 USD, 1,234,567.89 EUR",
    "2025-11-01T02:00:00.123Z",
    "2025-11-01 02:00:00",
    "img/logo@2x.png",
    "icon-192@3x.webp",
    "git@github.com:church/giving.git",
    "ssh://git@github.com/church/giving.git",
    "ord_1234567890123",
    "Invalid token: expired",
    "token count 12",
    "sk-learn-transformer-pipeline",
    "phone 555-123-4567",
    "from 10.0.0.1:8080",
    "npm install left-pad@1.3.0",
    "user_count=5 session_count=2",
    "GET /api/donations?page=2&limit=50&sort=created_at",
    "SELECT id FROM donations WHERE church_id = 7",
    "retry in 30s (attempt 2: timeout)",
]
