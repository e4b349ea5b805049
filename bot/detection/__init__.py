"""Finding credentials in text: rules as data, a linear-time engine, named filters.

Pure: no I/O beyond reading the bundled rules file (and, for fingerprinter_from_settings, the
key file). The seams other parts use:

    from bot.detection.fingerprint import Fingerprinter, fingerprinter_from_settings
    from bot.detection.engine import Detector
    detector = Detector.default(fingerprinter_from_settings(settings))  # engine="re2" to force
    detector.scan(text) -> list[Match]          # thread-safe; offsets in characters
    detector.explain(text) -> list[Candidate]   # every candidate, "kept" or why it was dropped
    from bot.detection.fakes import fake_secret  # fake_secret(rule_id, seed=0): a valid fake
    from bot.detection.masking import mask       # mask(secret) -> "sk-proj-…9fQa"

Modules: rules.yaml (the credential types) and rules.py (loading, validation); scanners.py
(Hyperscan, RE2); engine.py (confirmation, filters, overlaps, positions); filters.py (named
predicates); checksums.py; fingerprint.py; masking.py; fakes.py; types.py (Match, Severity).
"""
