"""Simulated patients and devices with ground truth, publishing what real devices would."""
