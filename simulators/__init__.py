"""Stage: simulated patients and devices with ground truth, publishing what real devices would
(`vitals simulate`, `vitals replay`).

- `physiology`, `episodes`, `draws`: a patient's vital signs, CRS and infection episodes;
- `devices`: what thermometers and oximeters send, faults included;
- `plan`, `scenario`, `cohort`: scenario files and seeded cohorts from the products' onsets;
- `stream`: a simulation as MQTT messages in publish order; `publish`: over MQTT at a pace;
- `truth`: what really happened, for scoring; `plot`: a PNG per patient; `run`: the commands.
"""
