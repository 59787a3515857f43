"""The web page at / (static files: HTML, one script, one stylesheet) that lets a person try the
service through its own public JSON API."""
