"""Pairs that SmolLM2-135M really tells apart under the llm judge's prompts (shared by its tests)."""

from __future__ import annotations

# (query, relevant product, irrelevant product)
PRODUCT_PAIRS = [
    ("cordless drill", "DEWALT 20V MAX Cordless Drill Driver Kit", "Pillowcase set, cotton, queen"),
    ("garden hose", "50 ft. Heavy Duty Garden Hose", "Stainless Steel Kitchen Sink"),
    ("led light bulb", "60W Equivalent Soft White LED Light Bulb (4-Pack)", "Cordless Leaf Blower"),
    ("toilet seat", "Elongated Closed Front Toilet Seat in White", "Outdoor Patio Umbrella"),
    ("paint roller", "9 in. Paint Roller Cover", "Ceiling Fan with Light Kit"),
    ("lawn mower", "21 in. Gas Walk Behind Push Lawn Mower", "Bathroom Towel Hook"),
    ("kitchen faucet", "Single-Handle Pull-Down Sprayer Kitchen Faucet", "Wood Screws 1-5/8 in. (100-Pack)"),
    ("smoke detector", "Battery Operated Smoke Alarm", "Vinyl Plank Flooring"),
]

# (query, rewrite with the same intent, rewrite of another intent)
REWRITE_PAIRS = [
    ("cordless drill", "battery powered drill", "garden hose"),
    ("led light bulb", "led bulb", "kitchen faucet"),
    ("toilet seat", "elongated toilet seat", "patio umbrella"),
    ("lawn mower", "push mower", "bath mat"),
    ("smoke detector", "smoke alarm", "wood screws"),
    ("paint roller", "roller cover for paint", "ceiling fan"),
    ("garden hose", "water hose 50 ft", "door knob"),
    ("kitchen faucet", "pull down kitchen faucet", "leaf blower"),
]
