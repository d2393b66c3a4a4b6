"""The patient's page (`vitals app`): a small mobile web app that is one more device of the
patient's, and its enrolment command (`vitals app-links`). See README.md in this folder."""
