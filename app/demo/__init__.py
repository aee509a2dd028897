"""The demo page (``GET /demo``) and the analysis it shows: every face, the crops, the score."""
