#!/usr/bin/env python3
"""Generate the synthetic demo catalog, ``data/demo/catalog.csv``.

Every product is invented: the brands are fictional and no retailer data is
used. The output is deterministic (``random.Random(7)``), so re-running the
script reproduces the file byte for byte. Run it from anywhere:

    python scripts/make_demo_catalog.py [--out PATH]

Each entry of ``SPECS`` is (category, count, title template, description
template). Templates use ``{...}`` placeholders:

* ``{name=a|b|c}`` picks one option and remembers it as ``name``;
* ``{a|b|c}`` picks one option without remembering it;
* ``{name}`` reuses a remembered value, or picks from ``POOLS[name]`` (or the
  department's brands for ``brand``); ``{name_lc}`` gives it in lower case
  (acronyms kept).

Title and description share the remembered values, so they stay consistent.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from collections import Counter
from pathlib import Path

SEED = 7
MAX_DESCRIPTION = 300
FIELDS = ("id", "title", "description", "category", "brand")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "data" / "demo" / "catalog.csv"
TOKEN = re.compile(r"\{([^{}]*)\}")

POOLS: dict[str, list[str]] = {
    key: value.split("|")
    for key, value in {
        "color": "Black|White|Charcoal Gray|Light Gray|Navy Blue|Turquoise|Teal|"
        "Sage Green|Emerald Green|Blush Pink|Mustard Yellow|Burnt Orange|Ivory|Beige|"
        "Taupe|Cream|Chocolate Brown|Royal Blue|Plum|Rust|Light Blue|Olive Green",
        "fabric": "Velvet|Linen Blend|Boucle|Chenille|Microfiber|Faux Leather|"
        "Top-Grain Leather|Performance Fabric|Tweed|Cotton Twill",
        "wood": "Oak|Walnut|Acacia|Solid Teak|Pine|Mango Wood|Rubberwood|Birch|Cherry|"
        "Espresso|Driftwood Gray|Reclaimed Wood|White Oak|Rustic Brown",
        "case": "White|Black|Dark Gray|Natural Oak|Walnut|Espresso|Whitewashed|"
        "Navy Blue|Sage Green|Cherry|Rustic Brown",
        "finish": "Matte Black|Brushed Nickel|Polished Chrome|Champagne Bronze|"
        "Oil-Rubbed Bronze|Brushed Gold|Antique Brass|Stainless Steel",
        "style": "Mid-Century Modern|Farmhouse|Industrial|Coastal|Bohemian|Traditional|"
        "Contemporary|Rustic|Glam|Scandinavian|Modern",
        "bedsize": "Twin|Twin XL|Full|Queen|King|California King",
        "ocolor": "Beige|Gray|Navy|Turquoise|Red|Khaki|White|Charcoal|Sage",
        "omat": "Wicker|Rattan|Aluminum|Acacia Wood|Teak|Steel|Resin Wicker",
        "rugsize": "2 ft. x 3 ft.|4 ft. x 6 ft.|5 ft. x 7 ft.|8 ft. x 10 ft.|"
        "9 ft. x 12 ft.|2 ft. 6 in. x 8 ft. Runner|6 ft. Round",
        "rcolor": "Gray/Ivory|Navy/Beige|Blue|Plum|Multicolor|Black/Beige|Teal|"
        "Rust/Cream|Blush Pink|Green|Red/Navy|Charcoal",
    }.items()
}

BRANDS: dict[str, list[str]] = {
    dept: names.split("|")
    for dept, names in {
        "Tools": "Torqwell|Ardentool|Korvix|Stavewick|Ironmere|Boltcraft",
        "Hardware": "Threadmoor|Anchorwick|Screwvale|Holdline|Quillbrook Hardware",
        "Building Materials": "Timberveil|Plankwise|Tilemond|Rainward|Cedarholt",
        "Paint": "Pigmenta|Brushmoor|Rainward|Lacquara",
        "Plumbing": "Aquavell|Tidemere|Rivelle|Wrenfield",
        "Bath": "Aquavell|Wrenfield|Tidemere|Softwell Bath|Rivelle",
        "Kitchen": "Copperlane|Whiskwood|Pantrio|Saltmarsh Kitchen|Hearthly",
        "Appliances": "Kelvora|Tempestra|Frostvale",
        "Lighting": "Lumiora|Glowmere|Candelis|Brightwick|Lanternby",
        "Furniture": "Halvard & Pine|Mossgrove Home|Quillmere|Okenfeld|Tessaly|"
        "Fernhollow|Ashcombe Living|Linden & Rowe",
        "Mattresses & Bedding": "Cloudmere|Nocturna Sleep|Linenfold|Hushby",
        "Decor": "Maribel Studio|Nook & Nettle|Thistlecrest|Velvetine Home|Paperbirch Prints|Loomhaven",
        "Outdoor": "Sunhollow|Patiora|Gardenvale|Emberforge|Terracotta Lane",
        "Storage & Organization": "Stowell|Binwise|Tidyform",
        "Baby & Kids": "Little Wren|Pebblekin|Bumblebirch",
        "Pets": "Pawmoor|Whiskerby",
        "Fitness": "Ironloft|Repwell",
        "Electrical": "Voltmere|Circuitra|Safehearth",
        "Office": "Deskwright|Paperloft",
    }.items()
}

# (category, count, title template, description template). Hand-wrapped, so the formatter skips it.
# fmt: off
SPECS: list[tuple[str, int, str, str]] = [
    # --- Tools -----------------------------------------------------------------
    ("Tools > Drills & Drivers", 45, "{brand} {volt=20V MAX|18V|12V MAX|24V} {bl=|Brushless }Cordless "
     "{drill=Drill/Driver|Hammer Drill/Driver|Compact Drill/Driver} Kit, {chuck=1/2 in.|3/8 in.} Chuck, "
     "{kit=2 Batteries|1 Battery and Charger|2.0Ah Battery and Charger|4.0Ah Battery, Charger and Bag|2 "
     "Batteries and Case}",
     "{volt} {bl_lc}cordless {drill_lc} with a {chuck} keyless chuck, {15|18|21|24}-position clutch and "
     "LED work light. {Drives deck screws and lag bolts into framing lumber.|Built for decking, framing "
     "and cabinet work.|Drills wood, metal and plastic; drives screws up to 3 in. long.}"),
    ("Tools > Impact Drivers", 26, "{brand} {volt=20V MAX|18V|12V MAX} {bl=|Brushless }Cordless Impact "
     "Driver{kit=, Tool Only| Kit, 2 Batteries| Kit, 1 Battery and Charger}, 1/4 in. Hex",
     "{1,400|1,600|1,800|2,000} in.-lbs. of torque and {2|3}-speed control for long deck screws, lag "
     "screws and structural fasteners. Quick-release 1/4 in. hex chuck takes impact-rated bits."),
    ("Tools > Drills & Drivers", 10, "{brand} {amp=6 Amp|7 Amp|8.5 Amp} Corded {type=Drill|Hammer Drill|"
     "Right Angle Drill}, {chuck=3/8 in.|1/2 in.} Keyless Chuck",
     "Corded {type_lc} with a variable-speed trigger and {amp_lc} motor for continuous drilling in wood, "
     "metal and masonry. {6|8|10} ft. cord."),
    ("Tools > Saws", 30, "{brand} {pwr=20V MAX Cordless|18V Cordless|15 Amp Corded|13 Amp Corded} "
     "{saw=7-1/4 in. Circular Saw|6-1/2 in. Circular Saw|Jigsaw|Reciprocating Saw|10 in. Compound Miter Saw|"
     "Oscillating Multi-Tool}{| Kit| with Blade}",
     "{pwr} {saw_lc} for {cutting 2x lumber and deck boards|rip and cross cuts in plywood|framing, "
     "remodeling and demolition|trim, molding and decking}. Includes {a carbide-tipped blade|a dust port "
     "and blade wrench|a cut-line light}."),
    ("Tools > Sanders", 18, "{brand} {kind=5 in. Random Orbit|1/4 Sheet Palm|Detail|3 in. x 21 in. Belt|"
     "Cordless 5 in. Random Orbit} Sander{| Kit with Dust Bag| with 10 Sanding Discs}",
     "{kind} sander with {a variable-speed dial|a 12,000 OPM motor|a hook-and-loop pad} for smoothing "
     "{deck boards and railings|furniture before staining|drywall patches and trim|cabinet doors}."),
    ("Tools > Power Tool Accessories", 22, "{brand} {item=Impact-Rated Driver Bit Set|Titanium Drill Bit "
     "Set|T25 Star Deck Screw Driver Bits|Masonry Drill Bit Set|Spade Bit Set|Countersink Drill Bit Set|"
     "Hole Saw Kit|#2 Square Recess Driver Bits}, {5|10|15|21|29|45} pc.",
     "{item} in a {clear storage case|belt-clip holder|hard case}. {Fits cordless drills and impact "
     "drivers with 1/4 in. hex chucks.|Hardened steel for long life in wood and metal.}"),
    ("Tools > Batteries & Chargers", 10, "{brand} {volt=20V MAX|18V|12V MAX} Lithium-Ion {2.0Ah Battery|"
     "4.0Ah Battery|5.0Ah Battery 2-Pack|Battery and Rapid Charger Starter Kit}",
     "Rechargeable {volt} battery pack with a fuel gauge; fits {brand} {volt} cordless drills, impact "
     "drivers and saws."),
    ("Tools > Hand Tools", 40, "{brand} {|Pro |Heavy-Duty }{item=16 oz. Claw Hammer|20 oz. Framing Hammer|"
     "10-Piece Screwdriver Set|Ratcheting Screwdriver|10 in. Adjustable Wrench|SAE/Metric Socket Set|"
     "Combination Wrench Set|25 ft. Tape Measure|24 in. Torpedo Level|48 in. Box Level|Utility Knife|Pry "
     "Bar|Locking Pliers|Hex Key Set|Chalk Line Reel|Speed Square}",
     "{item} with {a comfort-grip handle|forged steel construction|a lifetime warranty} for {framing and "
     "deck building|home repairs and furniture assembly|carpentry and remodeling}."),
    ("Tools > Tool Storage & Ladders", 20, "{brand} {16 in. Plastic Tool Box|19 in. Metal Tool Box|22 in. "
     "Rolling Tool Box|26 in. Rolling Tool Chest|Tool Bag with Shoulder Strap|6 ft. Fiberglass Step Ladder|"
     "4 ft. Aluminum Step Ladder|17 ft. Multi-Position Ladder|Folding Sawhorse, 2-Pack|Portable Workbench}",
     "Rugged {tool storage and jobsite gear|worksite equipment} rated for {225|250|300} lb. "
     "{Weather-resistant with metal latches.|Folds flat for storage.}"),
    ("Tools > Lawn Equipment", 12, "{brand} {volt=20V MAX|40V|60V|80V} Cordless {item=Leaf Blower|String "
     "Trimmer|21 in. Lawn Mower|Hedge Trimmer|16 in. Chainsaw}{| Kit| Tool Only}",
     "Battery-powered {item_lc} with a brushless motor; shares {volt} batteries with the rest of the "
     "{brand} cordless line."),
    # --- Hardware --------------------------------------------------------------
    ("Hardware > Deck Screws", 32, "{brand} {#8 x 2 in.|#8 x 2-1/2 in.|#9 x 3 in.|#10 x 3-1/2 in.|#10 x 4 "
     "in.} {Star Drive|Square Drive|Phillips} {mat=Exterior Coated|Stainless Steel|Composite|Ceramic Coated|"
     "Hot-Dip Galvanized} Deck Screws ({1 lb.|5 lb.|25 lb.|100-Pack|350-Pack})",
     "{mat} deck screws for {pressure-treated lumber|cedar and redwood|composite decking|deck framing and "
     "railings} with {a cutting point|a self-drilling tip|a nib head that countersinks cleanly}. Drive "
     "with a cordless drill or impact driver; bit included."),
    ("Hardware > Wood Screws", 18, "{brand} {#6 x 1 in.|#8 x 1-1/4 in.|#8 x 1-5/8 in.|#10 x 2 in.|#10 x 3 "
     "in.} {Phillips|Square|Star} {head=Flat Head|Pan Head|Trim Head} {fin=Zinc-Plated|Brass|Black Oxide|"
     "Stainless Steel} Wood Screws ({50|100|200|500}-Pack)",
     "Interior {fin_lc} wood screws with a {head_lc} for cabinets, furniture and trim. The sharp point "
     "starts easily in hardwood and softwood."),
    ("Hardware > Wall Anchors", 15, "{brand} {#6|#8|1/4 in.|3/8 in.} {Plastic Drywall Anchors|Self-Drilling "
     "Drywall Anchors|Toggle Bolts|Sleeve Anchors|Concrete Screw Anchors|Hollow Wall Anchors} ({10|25|50|"
     "100}-Pack)",
     "Holds up to {25|50|75|100|150} lb. per anchor. Use to hang shelves, mirrors, curtain rods and TVs."),
    ("Hardware > Structural Fasteners", 15, "{brand} {1/4 in. x 3 in. Hex Lag Screws|3/8 in. x 4 in. "
     "Carriage Bolts|16d Framing Nails|2-1/2 in. Finish Nails|1-1/2 in. Joist Hanger Nails|5/16 in. x 4 in. "
     "Structural Wood Screws|2 in. x 8 in. Joist Hangers|4 in. x 4 in. Deck Post Base}, {fin=Hot-Dip "
     "Galvanized|Zinc-Plated|Stainless Steel} ({1 lb.|5 lb.|10-Pack|50-Pack})",
     "{fin} hardware for deck ledgers, joists and posts. Rated for exterior use with pressure-treated "
     "lumber."),
    ("Hardware > Cabinet and Drawer Pulls", 22, "{brand} {3 in.|3-1/2 in.|3-3/4 in.|5-1/16 in.|6-5/16 in.|8 "
     "in.} Center to Center {shape=Bar|Arch|Cup|Edge|T-Bar|Knurled Bar} Pull, {finish}{| (10-Pack)| "
     "(25-Pack)}",
     "{style} {shape_lc} pull in {finish_lc} for kitchen cabinets, bathroom vanities and dressers. "
     "Mounting screws included."),
    ("Hardware > Cabinet and Drawer Knobs", 12, "{brand} {1-1/4 in.|1-3/8 in.|1-1/2 in.} {shape=Round|"
     "Square|Mushroom|Glass|Ceramic|Ring Pull} Cabinet Knob, {finish}{| (10-Pack)}",
     "{shape} knob in {finish_lc} for cabinet doors and drawers. Solid zinc base; screws included."),
    ("Hardware > Door Knobs & Levers", 18, "{brand} {item=Passage Door Knob|Privacy Door Knob|Passage Door "
     "Lever|Privacy Door Lever|Keyed Entry Lever|Single Cylinder Deadbolt|Handleset with Deadbolt}{| with "
     "Square Rose| with Round Rose}, {finish}",
     "{style} {item_lc} in {finish_lc}. Reversible for left- or right-hand doors; fits standard door prep."),
    ("Hardware > Barn Door Hardware", 8, "{brand} {5 ft.|6.6 ft.|8 ft.} Sliding Barn Door Hardware Kit, "
     "{type=Single Track|Double Door|Bypass|Soft-Close}, {Matte Black|Brushed Nickel|Rustic Bronze}",
     "{type} sliding barn door track kit with quiet nylon rollers, floor guide and all mounting hardware."),
    # --- Building materials and paint -----------------------------------------
    ("Building Materials > Decking", 14, "{brand} {1 in. x 6 in. x 12 ft.|5/4 in. x 6 in. x 16 ft.|2 in. x "
     "6 in. x 20 ft.} {mat=Grooved Composite Decking Board|Solid Composite Decking Board|Capped PVC Decking "
     "Board}, {dc=Driftwood Gray|Teak|Walnut|Espresso|Coastal Gray|Sand}",
     "Low-maintenance {mat_lc} in {dc_lc}; fade- and stain-resistant with a wood-grain finish. Install "
     "with hidden fasteners or composite deck screws."),
    ("Building Materials > Deck Stains & Coatings", 10, "{brand} {prod=Deck-Over Resurfacer|Deck Restore "
     "Coating|Textured Deck Resurfacer}, {Cedar|Redwood|Slate Gray|Navy|Chestnut|Sandstone|Charcoal}, {1 "
     "gal.|5 gal.}",
     "Thick {prod_lc} for old wood and concrete decks, docks and porches. Fills cracks up to 1/4 in. and "
     "resurfaces weathered boards with a slip-resistant finish."),
    ("Building Materials > Deck Stains & Coatings", 16, "{brand} {prod=Solid Color Deck Stain|"
     "Semi-Transparent Deck Stain|Deck and Porch Floor Paint|Fence and Deck Stain}, {Cedar|Redwood|Slate "
     "Gray|Navy|Chestnut|Sandstone|Charcoal}, {1 gal.|5 gal.}",
     "{prod} for wood and concrete {decks, docks and porches|decks, fences and siding|decks and pool "
     "surrounds}. {Hides weathered boards in one or two coats.|Water-based formula resists UV fading and "
     "mildew.|Covers up to 250 sq. ft. per gallon.}"),
    ("Building Materials > Deck Stains & Coatings", 8, "{brand} {prod=Clear Waterproofing Deck Sealer|Deck "
     "Cleaner and Brightener|Deck Stain Stripper|Mold and Mildew Deck Wash}, {1 gal.|5 gal.}",
     "{prod} that preps and protects wood decks, fences and outdoor furniture before or after staining."),
    ("Building Materials > Floor & Wall Tile", 22, "{brand} {tile=Penny Round Mosaic|3 in. x 6 in. Subway|"
     "Hexagon Mosaic|12 in. x 24 in.|Herringbone Mosaic|8 in. x 8 in. Encaustic-Look|Pebble Mosaic} "
     "{mat=Ceramic|Porcelain|Marble|Glass} Tile, {tc=White|Matte Black|Carrara|Sage Green|Navy|Beige|Gray|"
     "Terracotta}",
     "{tile} {mat_lc} tile in {tc_lc} for {kitchen backsplashes and bathroom walls|shower floors, with a "
     "non-slip finish|floors and walls|accent walls and fireplaces}. Sold by the case."),
    ("Building Materials > Molding & Millwork", 10, "{brand} {item=Primed MDF Baseboard Molding|Pine Crown "
     "Molding|Wainscoting Panel Kit|Shiplap Wall Plank|Chair Rail Molding|Quarter Round Molding}, {8 ft.|12 "
     "ft.|16 ft.}",
     "{item} ready to paint or stain; cuts cleanly with a miter saw."),
    ("Building Materials > Doors & Fencing", 14, "{brand} {24 in. x 80 in.|30 in. x 80 in.|32 in. x 80 in.|"
     "36 in. x 84 in.} {Shaker 1-Panel Interior Door|Glass 1-Lite Interior Door|Louvered Bifold Closet Door|"
     "Vinyl Privacy Fence Panel|Outdoor Privacy Wall Screen}",
     "{Primed and ready to paint.|Made from durable, moisture-resistant materials.} Installs with "
     "standard hardware."),
    ("Paint > Paint", 22, "{brand} {Ultra|Premium|Everyday} {loc=Interior|Exterior} Paint and Primer, "
     "{sheen=Flat|Eggshell|Satin|Semi-Gloss}, {Swan White|Harbor Gray|Sage Leaf|Midnight Navy|Warm Greige|"
     "Terracotta Clay|Soft Linen|Charcoal Slate}, {1 qt.|1 gal.|5 gal.}",
     "One-coat {loc_lc} paint and primer in {sheen_lc} sheen. Scrubbable, low-odor and mildew-resistant; "
     "covers up to 400 sq. ft. per gallon."),
    ("Paint > Spray Paint", 10, "{brand} {Multi-Purpose|Metallic|Chalk Finish|Rust Prevention|Hammered "
     "Finish} Spray Paint, {Gloss Black|Brushed Gold|Satin White|Hunter Green|Flat Gray|Oil-Rubbed Bronze}, "
     "{12 oz.|2-Pack, 12 oz.}",
     "Fast-drying spray paint for wood, metal, plastic and wicker; any-angle spray tip for furniture, "
     "railings and outdoor decor."),
    ("Paint > Painting Supplies", 12, "{brand} {9 in. Paint Roller Kit|2 in. Angled Sash Brush|Painter's "
     "Tape, 1.88 in. x 60 yd.|Canvas Drop Cloth, 9 ft. x 12 ft.|Extension Pole, 4-8 ft.|Paint Tray Liners, "
     "10-Pack|Deck Stain Pad Applicator|3-Piece Paint Brush Set}",
     "Painting supplies for {interior walls and trim|decks and fences|cabinets and furniture}; reusable "
     "and easy to clean."),
    # --- Plumbing and bath -------------------------------------------------------
    ("Plumbing > Bathroom Sink Faucets", 20, "{brand} {type=Single Handle|Widespread 2-Handle|4 in. "
     "Centerset|Waterfall Single Hole|Wall-Mount 2-Handle|Touchless} Bathroom Faucet{| with Drain Assembly| "
     "with Pop-Up Drain}, {finish}",
     "{style} {type_lc} bathroom sink faucet in {finish_lc} with a ceramic disc valve and {1.0|1.2} GPM "
     "flow rate."),
    ("Plumbing > Kitchen Faucets", 16, "{brand} {type=Pull-Down|Pull-Out|Single Handle High-Arc|"
     "Commercial-Style Spring|Bridge|Touchless Pull-Down} Kitchen Faucet{| with Soap Dispenser| with Side "
     "Sprayer}, {finish}",
     "{type} kitchen faucet in {finish_lc} with {dual spray modes|a magnetic docking spray head|a "
     "360-degree swivel spout} and a one-hole deck plate."),
    ("Plumbing > Kitchen Sinks", 14, "{brand} {30 in.|33 in.|36 in.|24 in.} {type=Farmhouse Apron-Front|"
     "Undermount Single Bowl|Drop-In Double Bowl|Workstation Undermount|Undermount 50/50 Double Bowl} "
     "{mat=Fireclay|Stainless Steel|Granite Composite|Cast Iron} Kitchen Sink",
     "{type} kitchen sink in {mat_lc}; scratch- and stain-resistant with sound dampening and a basket "
     "strainer."),
    ("Plumbing > Shower Heads", 16, "{brand} {type=Rain Shower Head|Handheld Shower Head|Dual Shower Head "
     "Combo|High-Pressure Fixed Shower Head|Filtered Shower Head}, {4.5 in.|6 in.|8 in.|10 in.}, {1|3|5|"
     "6}-Setting, {finish}",
     "{type} in {finish_lc} with rub-clean nozzles and a 1.8 GPM flow rate. Installs on a standard shower "
     "arm without tools."),
    ("Plumbing > Shower Faucets & Systems", 10, "{brand} {type=Shower Faucet Trim Kit with Valve|Tub and "
     "Shower Faucet Set|Thermostatic Shower System with Rain Head|Shower System with Handheld and Body "
     "Jets}, {finish}",
     "{type} in {finish_lc} with pressure-balancing valve to keep water temperature steady."),
    ("Plumbing > Toilets", 14, "{brand} {One-Piece|Two-Piece|Wall-Hung|Smart Bidet} {Elongated|Round|"
     "Compact Elongated} Toilet, {1.28 GPF|1.1/1.6 GPF Dual Flush|0.8 GPF}, {White|Biscuit}{| with "
     "Soft-Close Seat|, Chair Height}",
     "High-efficiency toilet with a powerful siphon flush, glazed trapway and {comfort-height|"
     "standard-height} bowl."),
    ("Plumbing > Vanities", 20, "{brand} {24 in. Single|30 in. Single|36 in. Single|48 in. Single|48 in. "
     "Double|60 in. Double|72 in. Double} Bathroom Vanity in {vc=White|Navy Blue|Espresso|Gray|Natural Oak|"
     "Sage Green|Black} with {top=Carrara Marble Top|White Quartz Top|Ceramic Sink Top|Engineered Stone Top}",
     "{style} bathroom vanity in {vc_lc}; the {top_lc} sits over soft-close doors and drawers. Faucet not "
     "included."),
    ("Bath > Tubs & Whirlpools", 8, "{brand} {59 in.|60 in.|67 in.} {Acrylic Freestanding Soaking Tub|"
     "Clawfoot Tub|Alcove Bathtub|Walk-In Tub}{| with Faucet| with Overflow and Drain}, {White|Matte Black}",
     "Bathtub with a deep soaking depth, heat-retaining shell and slip-resistant floor."),
    ("Bath > Bath Thermometers", 8, "{brand} {Digital Baby Bath Thermometer|Floating Duck Bath Thermometer|"
     "Bath and Room Thermometer|Waterproof Bath Thermometer with Alarm|Floating Bath Thermometer}{|, Yellow|"
     ", Blue|, White}",
     "Reads bath water temperature in {seconds in °F and °C|°F and °C with a color-coded safe zone}. "
     "{Floats in the tub for baby bath time.|Flashes a warning when water is too hot.|BPA-free; battery "
     "included.}"),
    ("Bath > Shower & Tub Accessories", 14, "{brand} {item=Non-Slip Bathtub Mat|Bamboo Bathtub Caddy Tray|"
     "Expandable Bath Tray|Hanging Shower Caddy|Tension Pole Shower Caddy|Bath Pillow|Tub Spout Cover|"
     "Shower Grab Bar|Stainless Steel Freestanding Shower Caddy}",
     "{item} for the bathtub and shower. {Rust-proof and water-resistant.|Suction cups hold it in place.|"
     "Easy to clean.}"),
    ("Bath > Towel Bars & Racks", 14, "{brand} {item=24 in. Towel Bar|18 in. Towel Bar|24 in. Double Towel "
     "Bar|Towel Ring|Over-the-Door Towel Rack|Freestanding Towel Rack|Wall-Mounted Towel Rack with Shelf|"
     "Heated Towel Rack}, {finish}",
     "{item} in {finish_lc}; corrosion-resistant with concealed mounting hardware."),
    ("Bath > Towel & Robe Hooks", 10, "{brand} {item=Double Robe Hook|Single Towel Hook|5-Hook Towel Rail|"
     "Over-the-Door Hooks|Towel Hooks, Set of 3}, {finish}",
     "{item} in {finish_lc} for towels and robes in the bathroom or entryway."),
    ("Bath > Toilet Paper Holders", 8, "{brand} {item=Pivoting Toilet Paper Holder|Freestanding Toilet "
     "Paper Stand|Toilet Paper Holder with Shelf|Recessed Toilet Paper Holder}, {finish}",
     "{item} in {finish_lc}; fits standard and mega rolls."),
    ("Bath > Bath Rugs & Mats", 12, "{brand} {Memory Foam Bath Mat|Cotton Bath Rug|Chenille Bath Mat|Teak "
     "Shower Mat|Diatomite Stone Bath Mat|Bath Rug Runner}, {17 in. x 24 in.|20 in. x 32 in.|24 in. x 60 "
     "in.}, {color}",
     "Absorbent, quick-drying bath mat in {color_lc} with a non-slip backing."),
    ("Bath > Shower Curtains & Accessories", 16, "{brand} {Waffle Weave|Botanical Print|Striped|Ombre|"
     "Linen-Look|Geometric} Shower Curtain, {72 in. x 72 in.|72 in. x 84 in.|36 in. x 72 in. Stall}, {color}",
     "Water-repellent fabric shower curtain in {color_lc} with reinforced grommets; machine washable."),
    ("Bath > Shower Curtains & Accessories", 8, "{brand} {item=Shower Curtain Rings, 12-Pack|Clear PEVA "
     "Shower Curtain Liner|Curved Shower Curtain Rod|Tension Shower Curtain Rod|Double Glide Shower Hooks}",
     "{item} for tubs and showers; rust-resistant and easy to install."),
    ("Bath > Bathroom Storage", 14, "{brand} {item=Over-the-Toilet Storage Cabinet|Freestanding Linen "
     "Cabinet|3-Tier Bathroom Shelf|Wall-Mounted Medicine Cabinet|Bathroom Floor Cabinet|Floating Bathroom "
     "Shelves, Set of 2}, {case}",
     "{style} {item_lc} in {case_lc} with adjustable shelves for towels and toiletries."),
    ("Bath > Bath Accessories", 8, "{brand} {3|4|5}-Piece {Ceramic|Marble-Look Resin|Glass|Bamboo|Stainless "
     "Steel} Bathroom Accessory Set, {White|Black|Gray|Natural|Gold}",
     "Matching soap dispenser, toothbrush holder, tumbler and tray for the bathroom counter."),
    ("Bath > Shower & Tub Doors", 6, "{brand} {48 in.|60 in.} x {72 in.|76 in.} Frameless Sliding {Shower|"
     "Tub} Door, {Clear Glass, Chrome|Clear Glass, Matte Black|Frosted Glass, Brushed Nickel}",
     "Frameless sliding glass door with 5/16 in. tempered glass and an easy-clean coating."),
    # --- Kitchen and appliances ---------------------------------------------------
    ("Kitchen > Cookware Sets", 12, "{brand} {5|8|10|12|14}-Piece {mat=Nonstick Aluminum|Tri-Ply Stainless "
     "Steel|Ceramic Nonstick|Hard-Anodized|Enameled Cast Iron|Copper Core} Cookware Set{|, Black|, Cream|, "
     "Sage Green|, Navy}",
     "{mat} pots and pans with tempered glass lids; works on gas, electric {and induction|} cooktops."),
    ("Kitchen > Skillets & Pans", 10, "{brand} {8 in.|10 in.|12 in.} {mat=Cast Iron|Nonstick|Stainless "
     "Steel|Carbon Steel} {Skillet|Fry Pan|Grill Pan|Saute Pan with Lid}",
     "{mat} pan for searing, frying and sauteing; oven-safe to 500 °F."),
    ("Kitchen > Crock Pots & Slow Cookers", 8, "{brand} {4 qt.|6 qt.|7 qt.|8 qt.} {Programmable|Manual|Cook "
     "and Carry|Casserole} Slow Cooker, {Stainless Steel|Black|Red|Cream}",
     "Slow cooker with a removable stoneware crock, glass lid and keep-warm setting."),
    ("Kitchen > Coffee & Espresso Makers", 12, "{brand} {item=Espresso Machine with Milk Frother|12-Cup "
     "Programmable Coffee Maker|Single-Serve Pod Coffee Maker|Pour-Over Coffee Maker|Cold Brew Coffee Maker|"
     "Burr Coffee Grinder|One-Cup Hot Water Dispenser}, {Stainless Steel|Black|White|Matte Red|Sage Green}",
     "Countertop {item_lc} for coffee at home; removable parts are dishwasher-safe."),
    ("Kitchen > Small Appliances", 12, "{brand} {item=4-Slice Toaster|2-Slice Toaster|High-Speed Blender|5 "
     "qt. Stand Mixer|6 qt. Air Fryer|1.7 L Electric Kettle|Toaster Oven|10-Cup Food Processor}, {color}",
     "Countertop {item_lc} in {color_lc} with simple dial controls and a one-year warranty."),
    ("Kitchen > Canisters & Food Storage", 14, "{brand} {3-Piece Ceramic Canister Set|4-Piece Glass "
     "Canister Set|Flour and Sugar Canister Set|Farmhouse Bread Box|Cereal Dispenser|Coffee Container with "
     "Scoop|6-Piece Airtight Pantry Containers}, {White|Black|Sage|Cream|Blue}",
     "Airtight kitchen storage that keeps flour, sugar, coffee and snacks fresh."),
    ("Kitchen > Kitchen Mats", 8, "{brand} {Anti-Fatigue|Cushioned Comfort|Woven Runner|Memory Foam} "
     "Kitchen Mat, {17 in. x 28 in.|20 in. x 39 in.|20 in. x 60 in.}, {color}",
     "Waterproof, stain-resistant kitchen mat in {color_lc} that eases standing at the sink and stove."),
    ("Kitchen > Bakeware & Tools", 14, "{brand} {item=Porcelain Loaf Pan|9 in. x 5 in. Nonstick Loaf Pan|"
     "Ceramic Baking Dish Set|Cake Stand with Dome|3-Piece Sheet Pan Set|Stainless Steel Colander Set|Salad "
     "Spinner|12-Piece Silicone Cooking Utensil Set|Pasta Tool Set|15-Piece Knife Block Set}",
     "{item} for everyday baking and cooking; dishwasher-safe."),
    ("Kitchen > Dinnerware", 14, "{brand} {item=16-Piece Dinnerware Set|Dinner Plates, Set of 4|Salad "
     "Plates, Set of 6|Dining Bowls, Set of 4|Oval Serving Platter|Nautical Serving Platter}, "
     "{mat=Stoneware|Porcelain|Melamine|Bone China}, {White|Speckled Cream|Navy|Sage|Matte Black|Blue "
     "Floral}",
     "{mat} {item_lc}; {microwave- and dishwasher-safe|chip-resistant}."),
    ("Kitchen > Tabletop & Bar", 12, "{brand} {Highball Glasses, Set of 6|Stemless Wine Glasses, Set of 4|"
     "Whiskey Decanter Set|Cocktail Shaker Set|20-Piece Flatware Set|45-Piece Flatware Set, Matte Black|"
     "Cake Server Set|60 in. x 84 in. Vinyl Tablecloth|Cloth Napkins, Set of 4|Insulated Lunch Bag}",
     "Table, bar and on-the-go essentials for everyday meals and entertaining."),
    ("Kitchen > Kitchen Islands & Carts", 12, "{brand} {item=Kitchen Island with Butcher Block Top|Rolling "
     "Kitchen Cart|Kitchen Island with Seating|Microwave Cart|Coffee Bar Cabinet}, {36 in.|48 in.|60 in.}, "
     "{case}",
     "{style} {item_lc} in {case_lc} with adjustable shelves, towel bar and locking casters."),
    ("Appliances > Refrigerators", 6, "{brand} {18|22|25|28} cu. ft. {French Door|Side-by-Side|Top-Freezer|"
     "Counter-Depth French Door} Refrigerator{| with Ice and Water Dispenser}, {Stainless Steel|Black "
     "Stainless|White}",
     "Energy-efficient refrigerator with adjustable glass shelves and humidity-controlled crisper drawers."),
    ("Appliances > Washers & Dryers", 8, "{brand} {4.5 cu. ft. Top Load Washer|5.0 cu. ft. Front Load "
     "Washer|7.4 cu. ft. Electric Dryer|7.4 cu. ft. Propane Gas Dryer|Compact Washer Dryer Combo}, {White|"
     "Graphite|Champagne}",
     "Laundry appliance with steam, quick-wash and sanitize cycles."),
    ("Appliances > Range Hoods", 8, "{brand} {30 in.|36 in.|48 in.} {Wall-Mount Chimney|Under-Cabinet|"
     "Island-Mount|Farmhouse} Range Hood, {400|600|900} CFM, {Stainless Steel|Matte Black|White}",
     "Ducted or ductless range hood with LED lights and dishwasher-safe filters."),
    # --- Lighting ----------------------------------------------------------------
    ("Lighting > Light Bulbs", 22, "{brand} {40W|60W|75W|100W} Equivalent {A19|E12 Candelabra|BR30 Flood|"
     "Edison ST64|G25 Globe|PAR38 Flood} Dimmable LED Light Bulb{| (4-Pack)| (6-Pack)| (12-Pack)}, "
     "{temp=Soft White 2700K|Daylight 5000K|Bright White 3000K}",
     "Energy-saving LED bulb in {temp_lc} rated for 15,000 hours; works with most dimmers."),
    ("Lighting > Pendant Lights", 12, "{brand} {1|3}-Light {type=Globe|Dome|Drum|Woven Rattan|Glass "
     "Cylinder|Bell} Pendant, {finish}",
     "{style} {type_lc} pendant for kitchen islands and dining rooms; adjustable cord."),
    ("Lighting > Chandeliers", 14, "{brand} {5|6|8|12}-Light {type=Candle-Style Drum|Sputnik|Wagon Wheel|"
     "Crystal Empire|Linear|Beaded|Lantern} Chandelier, {finish}",
     "{style} {type_lc} chandelier in {finish_lc} for dining rooms and foyers; dimmable."),
    ("Lighting > Table Lamps", 18, "{brand} {19 in.|24 in.|28 in.|31 in.} {base=Ceramic|Brass|Marble|Wood|"
     "Glass|Rattan} Table Lamp{| with USB Port|, Set of 2}, {color}",
     "{style} table lamp with a {base_lc} base in {color_lc}, {linen|drum|pleated} shade and three-way "
     "switch."),
    ("Lighting > Floor Lamps", 12, "{brand} {58 in.|63 in.|70 in.} {type=Arc|Tripod|Torchiere|Tree 5-Light|"
     "Pharmacy|LED Corner} Floor Lamp, {finish}",
     "{style} {type_lc} floor lamp in {finish_lc} with a foot-switch; lights a reading chair or sofa "
     "corner."),
    ("Lighting > Flush Mount Lighting", 10, "{brand} {12 in.|13 in.|16 in.|18 in.} {type=LED Flush Mount|"
     "Semi-Flush Mount|Drum Flush Mount|Farmhouse Semi-Flush Mount} Ceiling Light, {finish}",
     "{style} ceiling light in {finish_lc} for hallways, foyers and bedrooms."),
    ("Lighting > Vanity Lighting", 12, "{brand} {2|3|4|5}-Light {Bath Vanity Light|Globe Vanity Light|LED "
     "Vanity Bar|Cylinder Vanity Light}, {finish}",
     "{style} bathroom vanity light in {finish_lc}; mounts above a mirror."),
    ("Lighting > Wall Sconces", 10, "{brand} {Plug-In Swing Arm|Hardwired|Candle|Glass Globe|Rechargeable} "
     "Wall Sconce{| with USB Port| Set of 2}, {finish}",
     "{style} wall sconce in {finish_lc} for bedsides, hallways and bathrooms."),
    ("Lighting > Ceiling Fans", 10, "{brand} {42 in.|52 in.|56 in.|62 in.} {Indoor|Indoor/Outdoor|Low "
     "Profile|Farmhouse} Ceiling Fan with {Light Kit|Remote|Light and Remote}, {finish}",
     "Quiet reversible ceiling fan in {finish_lc} with {3|5} blades and a {3|6}-speed motor."),
    ("Lighting > Strip & Specialty Lights", 14, "{brand} {16.4 ft. RGB LED Light Strip|32.8 ft. Smart LED "
     "Light Strip|12 in. Under Cabinet Light Bar|Under Cabinet Puck Lights, 6-Pack|Motion Sensor Closet "
     "Light|48 ft. Outdoor Edison String Lights|24 ft. Luau Lantern String Lights|Fairy String Lights, 100 "
     "LEDs}",
     "Easy-install LED lighting that runs on a plug-in adapter or batteries."),
    ("Lighting > Outdoor Lighting", 14, "{brand} {Outdoor Wall Lantern|Dusk-to-Dawn Wall Light|Motion "
     "Sensor Flood Light|Solar Pathway Lights, 8-Pack|Low Voltage Landscape Spotlight|Solar Lanterns, Set "
     "of 2|Post Light}, {Matte Black|Bronze|Galvanized|Textured Black}",
     "Weather-resistant outdoor light for porches, garages and garden paths."),
    ("Lighting > Lighting Shades & Accessories", 6, "{brand} {10 in.|14 in.|16 in.} {Drum|Empire|Bell} Lamp "
     "Shade, {Linen|Burlap|Glass|Paper}",
     "Replacement lamp shade with a spider fitter for table and floor lamps."),
    # --- Furniture ------------------------------------------------------------------
    ("Furniture > Sofas", 30, "{brand} {72 in.|84 in.|88 in.|96 in.} {Rolled Arm|Track Arm|Tuxedo Arm|"
     "Square Arm|Pillow Top Arm|Camel Back} {fabric} Sofa{| with Reversible Cushions|, Tufted Back}, {color}",
     "{style} sofa upholstered in {color_lc} {fabric_lc} over a kiln-dried hardwood frame with "
     "{high-resilience foam|feather-blend} cushions."),
    ("Furniture > Sofas", 14, "{brand} {76 in.|84 in.|90 in.} {lt=Top-Grain Leather|Genuine Leather|Faux "
     "Leather|Aniline Leather} {Sofa|Loveseat|Chesterfield Sofa}, {lc=Cognac|Saddle Brown|Black|Chestnut|"
     "Ivory|Gray}",
     "{style} sofa in {lc_lc} {lt_lc} that softens with age; solid wood legs and pocket-coil seating."),
    ("Furniture > Sofas", 14, "{brand} {Pull-Out Sleeper Loveseat|Convertible Futon Sofa|Reclining Loveseat|"
     "Sleeper Sofa with Memory Foam Mattress|Low-Profile Loveseat|Power Reclining Sofa} in {fabric}, {color}",
     "Space-saving seating in {color_lc} {fabric_lc} for living rooms, dens and guest rooms."),
    ("Furniture > Sectionals", 20, "{brand} {L-Shaped|U-Shaped|Modular|Reversible|Reclining} {3|4|5|"
     "6}-Piece Sectional{| with Ottoman| with Chaise| with Storage}, {fabric}, {color}",
     "{style} sectional sofa in {color_lc} {fabric_lc}; rearrange the pieces to fit the room."),
    ("Furniture > Accent Chairs", 30, "{brand} {Wingback|Barrel|Swivel|Slipper|Club|Tufted Wingback|"
     "Chair-and-a-Half|Queen Anne} {fabric} Accent Chair{| with Gold Legs| with Ottoman| with Wood Legs}, "
     "{color}",
     "{style} accent chair in {color_lc} {fabric_lc} for the living room or bedroom reading corner."),
    ("Furniture > Accent Chairs", 8, "{brand} {Acrylic Clear Ghost Chair|Papasan Chair Frame|Papasan Chair "
     "with Cushion|Rattan Egg Chair|Bean Bag Chair|Floor Meditation Chair}",
     "Statement chair for living rooms, bedrooms and dorms."),
    ("Furniture > Recliners", 18, "{brand} {type=Power Lift|Rocker|Wall-Hugger|Swivel Glider|Push-Back|"
     "Chair-and-a-Half|Zero Gravity Power} Recliner{| with Massage and Heat| with USB Charging}, {fabric}, "
     "{color}",
     "{type} recliner in {color_lc} {fabric_lc} with padded arms and a {heavy-duty|smooth} reclining "
     "mechanism."),
    ("Furniture > Coffee & Cocktail Tables", 30, "{brand} {36 in.|42 in.|47 in.|48 in.} {type=Lift-Top|"
     "Round Drum|Storage|Nesting|Trunk|Waterfall|Glass-Top|Block|Oval|Rectangular} Coffee Table, {wood}",
     "{style} {type_lc} coffee table in {wood_lc} finish. {Hidden storage keeps remotes and blankets "
     "tidy.|Sturdy for everyday use.|Rounded corners suit busy family rooms.}"),
    ("Furniture > Coffee & Cocktail Tables", 10, "{brand} {42 in.|47 in.|48 in.} Smart Coffee Table with "
     "{feat=Wireless Charging and USB Ports|Built-In Fridge and Bluetooth Speakers|LED Lights and Lift-Top|"
     "Charging Station and Hidden Drawers}, {wood}",
     "Smart coffee table in {wood_lc} finish with {feat_lc}; plugs into a standard outlet."),
    ("Furniture > End & Side Tables", 18, "{brand} {C-Shaped|Round Pedestal|Storage|Tray-Top|Nesting|Drum|"
     "Narrow} End Table{| with Charging Station| with Drawer| Set of 2}, {wood}",
     "{style} end table in {wood_lc} finish, sized to sit between sofas and recliners."),
    ("Furniture > Sofa & Console Tables", 12, "{brand} {42 in.|48 in.|55 in.|60 in.} {Console|Sofa|Entryway|"
     "Narrow Console|Parsons Console} Table{| with Drawers| with Storage Shelf}, {wood}",
     "{style} console table in {wood_lc} finish for the entry, hallway or behind the sofa."),
    ("Furniture > TV Stands & Entertainment Centers", 12, "{brand} {style} TV Stand for TVs up to {55|65|75|"
     "85} in.{| with Electric Fireplace| with LED Lights| with Storage Doors}, {wood}",
     "Media console in {wood_lc} finish with cable management and adjustable shelves."),
    ("Furniture > Dining Tables", 16, "{brand} {48 in. Round|60 in. Rectangular|72 in. Rectangular|84 in. "
     "Extendable|42 in. Square|36 in. Round Pedestal} {Farmhouse|Trestle|Industrial Pipe|Mid-Century|"
     "Marble-Top|Glass-Top} Dining Table, {wood}",
     "{style} dining table in {wood_lc} finish for everyday meals and entertaining."),
    ("Furniture > Dining Chairs", 20, "{brand} {Upholstered Parsons|Wishbone|Windsor|Cross-Back|Tufted|"
     "Acrylic Ghost|Cane-Back|Leather} Dining Chair{| (Set of 2)| (Set of 4)}, {color}",
     "{style} dining chair in {color_lc} with a solid wood frame and padded seat."),
    ("Furniture > Dining Table Sets", 10, "{brand} {3|5|7}-Piece {Counter Height|Bistro|Farmhouse|"
     "Extendable|Round Pedestal|Small Space} Dining Set, {wood}",
     "{style} dining table and chairs in {wood_lc} finish for kitchens and breakfast nooks."),
    ("Furniture > Bar Stools", 20, "{brand} {24 in. Counter Height|26 in. Counter Height|30 in. Bar Height|"
     "Adjustable Height} {Swivel|Backless|Saddle|Upholstered|Industrial Metal|Wood|Rattan} Bar Stool{| with "
     "Backrest| with Footrest}{| (Set of 2)| (Set of 3)}, {color}",
     "{style} bar stool in {color_lc} for kitchen islands and home bars."),
    ("Furniture > Office Chairs", 18, "{brand} {Ergonomic Mesh|Executive High-Back|Big and Tall|Mid-Back "
     "Task|Drafting|Gaming|Armless Velvet} Office Chair{| with Lumbar Support| with Headrest| with Flip-Up "
     "Arms}, {color}",
     "Adjustable-height office chair in {color_lc} with 360-degree swivel and smooth-rolling casters."),
    ("Furniture > Desks", 20, "{brand} {40 in.|47 in.|55 in.|60 in.|63 in.} {L-Shaped|Writing|"
     "Height-Adjustable Standing|Computer|Executive|Ladder|Floating Wall-Mounted} Desk{| with Hutch| with "
     "Drawers| with Keyboard Tray}, {wood}",
     "{style} desk in {wood_lc} finish for the home office, with room for a laptop and monitor."),
    ("Furniture > Bookcases & Shelves", 22, "{brand} {36 in.|60 in.|72 in.|84 in.|24 in.} {5-Shelf Bookcase|"
     "Ladder Bookcase|Cube Bookcase|Etagere Bookcase|Corner Bookcase|Hanging Wall Bookshelf|Floating Wall "
     "Shelves, Set of 3|Hexagon Wall Shelves|Pipe Wall Shelf}, {wood}",
     "{style} shelving in {wood_lc} finish for books, plants and display."),
    ("Furniture > Beds", 30, "{brand} {bedsize} {type=Upholstered Platform|Tufted Upholstered|Four-Poster|"
     "Canopy|Sleigh|Storage Platform|LED Platform|Low-Profile Platform|Wingback Upholstered|Metal Platform|"
     "Floating Platform} Bed, {color}",
     "{style} {type_lc} bed in {color_lc}; slat support means no box spring is needed."),
    ("Furniture > Headboards", 10, "{brand} {bedsize} {Tufted Upholstered|Channel-Tufted|Wingback|Rattan|"
     "Solid Wood|Bookcase|Wall-Mounted Panel} Headboard, {color}",
     "{style} headboard in {color_lc}; attaches to most metal bed frames."),
    ("Furniture > Kids Beds & Daybeds", 12, "{brand} {Twin over Full Bunk Bed|Twin over Twin Bunk Bed|Loft "
     "Bed with Desk|House Floor Bed|Full Bed with Trundle|Toddler Bed}, {Solid Pine|Metal|Wood}, {White|"
     "Gray|Natural|Espresso|Pink|Navy}",
     "Kids bed with full-length guard rails and a weight capacity of up to {400|500} lb."),
    ("Furniture > Kids Beds & Daybeds", 8, "{brand} {Twin Daybed with Trundle|Upholstered Daybed|Metal "
     "Daybed|Daybed with Storage Drawers|Rattan Daybed}, {color}",
     "{style} daybed in {color_lc}: a sofa by day and a guest bed by night."),
    ("Furniture > Dressers & Chests", 20, "{brand} {3|5|6|7|9}-Drawer {Double Dresser|Chest|Tall Chest|"
     "Lingerie Chest|Dresser with Mirror|Storage Dresser}, {case}",
     "{style} dresser in {case_lc} with smooth metal glides and anti-tip hardware."),
    ("Furniture > Nightstands", 12, "{brand} {1|2|3}-Drawer Nightstand{| with Charging Station| with LED "
     "Lights| with Open Shelf}, {case}",
     "{style} bedside table in {case_lc} sized for a lamp, phone and books."),
    ("Furniture > Armoires & Wardrobes", 10, "{brand} {Wardrobe Armoire with Hanging Rod|Small Wardrobe "
     "Closet|Jewelry Armoire with Mirror|Wall-Mounted Jewelry Cabinet|Portable Closet with Zipper Cover}, "
     "{case}",
     "{style} wardrobe storage in {case_lc} for clothes, shoes and accessories."),
    ("Furniture > Benches & Ottomans", 24, "{brand} {Round Tufted Ottoman|Hinged Square Storage Ottoman|"
     "Cocktail Ottoman|Woven Pouf|Entryway Shoe Storage Bench|Upholstered Bench|End-of-Bed Storage Bench|"
     "Faux Fur Vanity Stool|Adjustable Height Accent Stool}, {fabric}, {color}",
     "{style} seating in {color_lc} {fabric_lc} that doubles as a footrest or extra storage."),
    ("Furniture > Indoor Chaise Lounges", 6, "{brand} {Tufted|Armless|Reclining|Sofa-Style} Chaise Lounge, "
     "{fabric}, {color}",
     "{style} chaise lounge in {color_lc} {fabric_lc} for reading nooks and bedrooms."),
    ("Furniture > Salon Chairs", 8, "{brand} {Hydraulic Salon Styling Chair|Reclining Barber Chair|"
     "All-Purpose Salon Chair|Salon Shampoo Chair|Hydraulic Stylist Stool}, {Black|Red|White|Brown|Gray}",
     "Professional salon and barber chair with a 360-degree swivel, hydraulic pump and wipe-clean vinyl "
     "upholstery."),
    ("Furniture > Massage Chairs", 8, "{brand} {Zero Gravity Full-Body Massage Chair|3D Shiatsu Massage "
     "Chair|Compact Massage Recliner|SL-Track Massage Chair}, {Black|Beige|Brown|Gray}",
     "Full-body massage chair with heat, airbags, zero-gravity recline and a Bluetooth speaker."),
    ("Furniture > Sideboards & Buffets", 12, "{brand} {48 in.|60 in.|70 in.} {item=Sideboard Buffet|Tall "
     "Buffet Cabinet|Credenza|Wine Bar Cabinet|Coffee Bar Buffet}{| with Sliding Barn Doors| with Wine Rack|"
     " with Glass Doors}, {case}",
     "{style} {item_lc} in {case_lc} with adjustable shelves for dishes, linens and bar ware."),
    ("Furniture > Storage Cabinets", 18, "{brand} {item=Accent Cabinet|Kitchen Pantry Cabinet|Tall Storage "
     "Cabinet|Office Storage Cabinet|Accent Chest|Farmhouse Cabinet}{| with Doors| with Drawers| with "
     "Locking Doors}, {case}",
     "{style} {item_lc} in {case_lc} with adjustable shelves for office, pantry or living room storage."),
    ("Furniture > Shoe Storage", 8, "{brand} {Enclosed Shoe Cabinet|3-Tier Shoe Rack|Shoe Storage Bench|"
     "Stackable Shoe Rack} for {12|20|30} Pairs, {case}",
     "Entryway shoe storage in {case_lc} that keeps boots and sneakers tidy."),
    ("Furniture > Living Room & Table Sets", 12, "{brand} {2-Piece Sofa and Loveseat Set|3-Piece Reclining "
     "Living Room Set|3-Piece Coffee Table Set|3-Piece Nesting Table Set|2-Piece Sofa and Ottoman Set}, "
     "{color}",
     "Coordinated living room furniture set in {color_lc}."),
    ("Furniture > Small Tables & Vanities", 14, "{brand} {Makeup Vanity Desk with Lighted Mirror|Makeup "
     "Vanity with Stool|6 ft. Fold-in-Half Folding Table|34 in. Square Card Table|3-Tier Indoor Plant Stand|"
     "Bicycle Plant Stand|Telephone Table}, {White|Black|Pink|Gray|Natural}",
     "Compact furniture for small spaces; assembles in minutes."),
    # --- Mattresses and bedding -------------------------------------------------
    ("Mattresses & Bedding > Mattresses", 14, "{brand} {8 in.|10 in.|12 in.|14 in.} {Memory Foam|Hybrid|"
     "Innerspring|Latex Foam|Cooling Gel Memory Foam} Mattress, {Medium|Firm|Plush|Medium Firm}, {bedsize}",
     "{Pressure-relieving|Supportive|Breathable} mattress with a {cooling cover|quilted top} that arrives "
     "rolled in a box."),
    ("Mattresses & Bedding > Toppers & Protectors", 10, "{brand} {3 in. Gel Memory Foam Mattress Topper|2 "
     "in. Down Alternative Mattress Pad|Waterproof Mattress Protector|Zippered Mattress Encasement|Quilted "
     "Mattress Pad}, {bedsize}",
     "Breathable mattress layer with a deep-pocket skirt that fits mattresses up to 18 in."),
    ("Mattresses & Bedding > Bed Frames & Bases", 10, "{brand} {Adjustable Bed Base with Wireless Remote|"
     "Zero Gravity Adjustable Base with Massage|14 in. Metal Platform Bed Frame|Steel Bed Frame with "
     "Headboard Brackets}, {bedsize}",
     "Sturdy bed support with under-bed clearance for storage."),
    ("Mattresses & Bedding > Bedding Sets", 16, "{brand} {3|5|7|8}-Piece {Comforter Set|Duvet Cover Set|"
     "Quilt Set|Bed-in-a-Bag|Tie-Dye Duvet Cover Set}, {bedsize}, {color}",
     "Soft bedding set in {color_lc} with matching shams; machine washable."),
    ("Mattresses & Bedding > Sheets & Pillows", 16, "{brand} {300|400|600|800} Thread Count {Cotton Sateen|"
     "Egyptian Cotton|Percale|Bamboo Viscose|Microfiber} Sheet Set, {bedsize}, {color}",
     "Deep-pocket sheet set in {color_lc} with a flat sheet, fitted sheet and pillowcases."),
    ("Mattresses & Bedding > Pillows & Bed Accessories", 8, "{brand} {Body Pillow with Cover|Body Pillow "
     "Case|Memory Foam Bed Pillow, 2-Pack|Down Alternative Bed Pillow|Bed Risers, Set of 4|Bed Rail Guard}",
     "Bedroom essential that makes the bed more comfortable and practical."),
    # --- Decor -------------------------------------------------------------------
    ("Decor > Accent Pillows", 45, "{brand} {18 in. x 18 in.|20 in. x 20 in.|22 in. x 22 in.|14 in. x 20 "
     "in. Lumbar|12 in. x 24 in. Lumbar} {Solid|Textured|Striped|Geometric|Tassel-Trim|Embroidered|Ombre|"
     "Chevron|Zodiac|Boho Tufted} {pm=Velvet|Linen|Cotton|Outdoor|Faux Leather|Wool Blend} Throw Pillow, "
     "{pc=Turquoise|Teal|Navy Blue|Light Blue|Mustard|Burnt Orange|Blush Pink|Sage Green|Emerald|Ivory|"
     "Charcoal|Auburn|Rust|Plum|Gold|White}",
     "Decorative {pm_lc} accent pillow in {pc_lc} with a hidden zipper and {down-alternative|feather} "
     "insert."),
    ("Decor > Throw Blankets", 10, "{brand} {50 in. x 60 in.|60 in. x 80 in.} {Chunky Knit|Faux Fur|Waffle "
     "Weave|Sherpa|Cotton Muslin|Heated Fleece} Throw Blanket, {color}",
     "Cozy throw blanket in {color_lc} for the sofa or foot of the bed."),
    ("Decor > Wall Art", 48, "{brand} {subj=Abstract|Botanical|Coastal|Eiffel Tower|Vintage Map|Feather|"
     "Floral|Mountain Landscape|Hawaii Vintage|Dinosaur|Elephant|Peacock|Flamingo|Pineapple|Sunflower|"
     "Mexican Folk Art|Cubist Portrait|Owl|Bee|Rooster|Ship Wheel} {Framed Canvas Print|Canvas Wall Art|"
     "Framed Print|Gallery-Wrapped Canvas|Metal Wall Art|Prints, Set of 3}, {12 in. x 16 in.|16 in. x 20 "
     "in.|24 in. x 36 in.|30 in. x 40 in.}",
     "{subj} wall art for the living room, bedroom or office. {Printed on archival canvas|Printed with "
     "fade-resistant inks}; ready to hang."),
    ("Decor > Kids Wall Décor", 16, "{brand} {subj=Dinosaur|T-Rex|Safari Animal|Outer Space|Unicorn|Rainbow|"
     "Woodland Animal|Construction Truck} {Wall Decals|Peel and Stick Wall Mural|Nursery Canvas Set of 3|"
     "Growth Chart|Kids Wall Art Print}",
     "{subj} wall decor for nurseries, kids rooms and playrooms."),
    ("Decor > Wall Décor", 16, "{brand} {Home Sweet Home Sign|Welcome Wood Sign|Large Spoon and Fork Wall "
     "Decor|Metal Sunburst Wall Decor|Farmhouse Wall Sign|Mud Room Sign|Macrame Wall Hanging|Anchor Metal "
     "Wall Decor|Woven Wall Basket Set|Brushed Gold Leaf Wall Decor|Bar Room Metal Wall Sign|Carved Wood "
     "Wall Panel}",
     "Wall accent that adds texture above a console, bed or sofa."),
    ("Decor > Wall & Accent Mirrors", 16, "{brand} {24 in. x 36 in.|30 in. Round|36 in. Round|22 in. x 65 "
     "in. Full-Length|24 in. x 36 in. Oval|28 in. x 40 in. Arched} {Sunburst|Driftwood-Frame|Beveled|"
     "Leaning|Rattan-Frame|Frameless LED|Metal-Frame|Venetian} Mirror, {Black|Gold|Natural Wood|Silver|"
     "Brushed Nickel}",
     "{style} mirror for entryways, bathrooms and bedrooms; hangs vertically or horizontally."),
    ("Decor > Area Rugs", 40, "{brand} {|Handmade Tufted |Hand-Knotted |Power-Loomed |Flatweave }{pat=Ombre|"
     "Oriental|Shag|Moroccan Trellis|Abstract|Distressed Vintage|Geometric|Solid|Animal Print|Floral|"
     "Striped|Persian Medallion} {Wool|Polypropylene|Jute Blend|Cotton|Machine-Washable} Area Rug, "
     "{rcolor}, {rugsize}",
     "{pat} area rug in {rcolor_lc} with a low-shedding pile for living rooms, bedrooms and dining rooms."),
    ("Decor > Area Rugs", 10, "{brand} {Striped|Geometric|Welcome|Medallion|Solid|Tropical} Indoor/Outdoor "
     "Rug, {rcolor}, {rugsize}",
     "Weather-resistant polypropylene rug for patios, porches and entryways."),
    ("Decor > Curtains & Drapes", 22, "{brand} {Blackout Thermal|Sheer Voile|Linen-Look Light Filtering|"
     "Velvet Blackout|Grommet Blackout|Room-Darkening Rod Pocket|Pinch-Pleat} Curtain Panels, {52 in. x 63 "
     "in.|52 in. x 84 in.|52 in. x 96 in.|50 in. x 108 in.} (Set of 2), {color}",
     "Pair of window curtains in {color_lc} that {block light and insulate|soften light and add privacy}; "
     "machine washable."),
    ("Decor > Curtain Hardware & Accessories", 10, "{brand} {28-48 in. Adjustable Curtain Rod|72-144 in. "
     "Double Curtain Rod|24-36 in. Tension Rod|Small Cafe Curtain Rod|Curtain Tiebacks, Set of 2|Curtain "
     "Rings with Clips, 28-Pack}, {finish}",
     "Window hardware in {finish_lc} with mounting brackets and screws."),
    ("Decor > Wall Clocks", 8, "{brand} {12 in.|18 in.|24 in.|30 in.} {Silent Non-Ticking|Farmhouse Roman "
     "Numeral|Oversized Metal|Glow-in-the-Dark|Outdoor|Starburst} Wall Clock, {Black|Gold|White|Natural "
     "Wood}",
     "Battery-operated wall clock with a quiet quartz movement."),
    ("Decor > Decorative Accents", 18, "{brand} {Ceramic Vase|Glass Bud Vase Set|Decorative Bowl|Decorative "
     "Tray|Nesting Tray Set|Pillar Candle Holder Set|Hurricane Candle Holder|Decorative Book Set|Ceramic "
     "Urn|Lantern Candle Holder|Girl Reading Sculpture}, {White|Black|Gold|Terracotta|Sage|Blue|Clear}",
     "Tabletop accent for shelves, mantels and coffee tables."),
    ("Decor > Faux Plants & Florals", 12, "{brand} {12 in.|24 in.|4 ft.|6 ft.} {Faux Fiddle Leaf Fig Tree|"
     "Artificial Orchid Arrangement|Faux Olive Tree|Artificial Succulent Set|Faux Peony Arrangement in "
     "Glass Vase|Faux Snake Plant|Real-Touch Rose Arrangement|Faux Aloe Vera Plant}",
     "Lifelike faux greenery that never needs watering."),
    ("Decor > Picture Frames & Memo Boards", 10, "{brand} {8 in. x 10 in. Picture Frame|22 in. x 36 in. "
     "Poster Frame|Gallery Frame Set of 7|Magnetic Dry Erase Monthly Calendar|Cork Memo Board}, {White|"
     "Black|Gold|Natural|Sage}",
     "Wall accessory that hangs in minutes with the included hardware."),
    ("Decor > Wallpaper", 10, "{brand} {pat=Shiplap|Botanical|Geometric|Grasscloth-Look|Damask|Brick|"
     "Terrazzo|Striped} Peel and Stick Wallpaper, {White|Sage|Navy|Gray|Black|Blush}, 20.5 in. x 18 ft.",
     "Removable {pat_lc} wallpaper that is splash-proof and repositionable; a renter-friendly accent wall."),
    ("Decor > Furniture Cushions & Covers", 20, "{brand} {Chair Seat Cushion|54 in. Bench Cushion|Outdoor "
     "Seat/Back Cushion|Dining Chair Pads, Set of 4|Memory Foam Desk Seat Cushion|Replacement Cushion "
     "Insert|Stretch Sofa Slipcover|Recliner Slipcover|Patio Furniture Cover|58 in. Grill Cover|73 in. "
     "Grill Cover|Outdoor Seat Cushions, Set of 4}, {Gray|Beige|Black|Navy|Khaki}",
     "Protective, easy-care cushion or cover with ties or elastic to stay put."),
    ("Decor > Door Mats", 8, "{brand} {Coir Welcome Door Mat|Natural Coir Door Mat|Rubber Boot Tray|Outdoor "
     "Scraper Mat}, {18 in. x 30 in.|24 in. x 36 in.|20 in. x 48 in.}",
     "Durable entry mat that traps dirt and moisture; for front porches and mudrooms."),
    ("Decor > Holiday Decor", 8, "{brand} {7.5 ft. Pre-Lit Artificial Christmas Tree|6 ft. Slim Artificial "
     "Christmas Tree|24 in. Artificial Wreath|Arched Lighted Christmas Tree Decor|18 in. Boxwood Wreath|9 "
     "ft. Garland}",
     "Seasonal decor with realistic branch tips{| and warm white lights}."),
    # --- Outdoor ----------------------------------------------------------------
    ("Outdoor > Outdoor Conversation Sets", 14, "{brand} {4|5|6|7}-Piece {omat} Patio Conversation Set with "
     "{Cushions|Fire Pit Table|Coffee Table}, {ocolor}",
     "Outdoor seating set in {omat_lc} with {ocolor_lc} weather-resistant cushions for porches and patios."),
    ("Outdoor > Patio Dining & Bar Sets", 14, "{brand} {3|5|7|9}-Piece {omat} {Outdoor Dining Set|Patio Bar "
     "Set|Bistro Set}{| with Umbrella Hole}, {ocolor}",
     "{omat} outdoor dining furniture with {ocolor_lc} cushions; rust-resistant."),
    ("Outdoor > Patio Sofas & Sectionals", 10, "{brand} {Outdoor Sofa|Outdoor Loveseat|6-Piece Outdoor "
     "Sectional|Modular Patio Sectional|L-Shaped Outdoor Sectional} with Cushions, {omat}, {ocolor}",
     "Deep-seat outdoor sofa in {omat_lc} with fade-resistant {ocolor_lc} cushions."),
    ("Outdoor > Patio Chairs & Lounges", 16, "{brand} {Adirondack Chair|Chaise Lounge|Porch Rocking Chair|"
     "Glider|Zero Gravity Lounge Chair|Egg Swing Chair|Patio Lounge Chair}{| (Set of 2)}, {Poly Lumber|"
     "Acacia Wood|Wicker|Aluminum|Teak}, {ocolor}",
     "Weather-resistant outdoor chair for decks, porches and poolsides."),
    ("Outdoor > Grills & Fire Pits", 24, "{brand} {3-Burner Propane Gas Grill|4-Burner Propane Gas Grill|22 "
     "in. Kettle Charcoal Grill|Pellet Grill and Smoker|Portable Tabletop Gas Grill|Kamado Ceramic Grill|36 "
     "in. Flat Top Griddle|Wood-Burning Fire Pit|Propane Fire Pit Table|Smokeless Fire Pit|Outdoor "
     "Fireplace|Fire Pit Coffee Table}, {Stainless Steel|Black|Bronze}",
     "Outdoor cooking and fire feature with heavy-gauge steel construction and a {weather cover|cooking "
     "grate|spark screen} included."),
    ("Outdoor > Planters", 12, "{brand} {8 in.|12 in.|16 in.|24 in.} {Self-Watering|Raised Bed|Hanging "
     "Basket|Round|Square|Window Box|Tall Fluted} Planter, {pm=Ceramic|Terracotta|Resin|Fiberglass|Cedar|"
     "Galvanized Metal|Concrete}",
     "{pm} planter with drainage for herbs, flowers and houseplants."),
    ("Outdoor > Garden Hoses & Watering", 12, "{brand} {5/8 in. x 50 ft. Garden Hose|5/8 in. x 100 ft. "
     "Heavy-Duty Garden Hose|50 ft. Expandable Garden Hose|Hose Reel Cart|Wall-Mount Hose Reel|8-Pattern "
     "Hose Nozzle|Oscillating Sprinkler|25 ft. Soaker Hose|Metal Hose Pot}",
     "Kink-resistant watering gear with crush-proof brass fittings."),
    ("Outdoor > Deck Boxes & Storage", 8, "{brand} {73 gal.|100 gal.|120 gal.|150 gal.} {Resin Deck Box|"
     "Wood-Look Deck Box|Wicker Deck Box|Waterproof Outdoor Storage Chest}, {Brown|Gray|Taupe|Black}",
     "Lockable deck box for cushions, pool toys and garden tools; doubles as seating."),
    ("Outdoor > Patio Umbrellas & Bases", 10, "{brand} {9 ft. Market Umbrella|10 ft. Offset Cantilever "
     "Umbrella|11 ft. Double-Top Umbrella|Resin Free-Standing Umbrella Base|50 lb. Umbrella Base|9 ft. "
     "Solar LED Market Umbrella}, {ocolor}",
     "Patio shade with UV-resistant canopy and a sturdy base."),
    ("Outdoor > Garden Decor", 16, "{brand} {Gnome Garden Statue|Fairy Garden Kit|Whimsical Solar Garden "
     "Stakes|Girl Reading Garden Statue|Tiered Outdoor Fountain|Solar Bird Bath Fountain|Indoor Tabletop "
     "Water Fountain|Brick-Look Wall Fountain|Metal Butterfly Wall Art|Wind Spinner|Rain Gauge|Outdoor "
     "Thermometer}",
     "Garden accent that weathers sun and rain on patios, lawns and porches."),
    ("Outdoor > Pergolas & Awnings", 10, "{brand} {10 ft. x 12 ft. Aluminum Pergola|12 ft. x 16 ft. Wood "
     "Pergola|10 ft. Retractable Patio Awning|6 ft. Retractable Side Awning|6 ft. x 8 ft. Greenhouse|8 ft. "
     "x 10 ft. Gazebo}, {Beige|Gray|Bronze|Natural}",
     "Outdoor shade structure with a powder-coated frame and UV-resistant fabric or panels."),
    ("Outdoor > Yard & Play", 18, "{brand} {Post-Mount Mailbox|Wall-Mount Mailbox|Bird Feeder|120 in. "
     "Outdoor Movie Screen|Cornhole Set|Giant Tumbling Tower|Firewood Log Rack|4-Person Outdoor Barrel "
     "Sauna|2-Person Infrared Sauna|Swing Set Accessory Kit|60 qt. Rolling Cooler|Picnic Basket for 4}",
     "Backyard upgrade built from weather-resistant materials."),
    # --- Storage, kids, pets, misc ----------------------------------------------
    ("Storage & Organization > Baskets, Bins & Hampers", 16, "{brand} {Woven Storage Basket|Fabric Storage "
     "Cubes, 6-Pack|Wire Basket with Dividers|Plastic Storage Bin with Lid|Seagrass Baskets, Set of 3|"
     "Laundry Hamper with Lid|Laundry Basket with Wheels|Double Laundry Sorter|Collapsible Laundry Basket|"
     "3-Drawer Plastic Storage Drawers}, {Natural|Gray|White|Black|Beige}",
     "Storage for closets, laundry rooms and playrooms with sturdy handles."),
    ("Storage & Organization > Closet & Garage", 16, "{brand} {5-8 ft. Closet Organizer System|Hanging "
     "Closet Shelves|Pull-Out Valet Rod|Zippered Garment Storage Bag|48-72 in. Closet Rod|5-Tier Steel "
     "Shelving Unit|Wall-Mounted Garage Storage Rack|Overhead Garage Storage Rack|Sports Equipment Storage "
     "Rack|Bike Wall Mount}, {White|Gray|Chrome|Black}",
     "Space-saving organizer for closets, garages and utility rooms."),
    ("Storage & Organization > Trash Cans & Hooks", 14, "{brand} {13 gal. Step Trash Can|2.6 gal. Bathroom "
     "Wastebasket|Dual Compartment Recycling Bin|13 gal. Sensor Trash Can|Freestanding Coat Rack|5-Hook "
     "Wall Coat Rack|Deer Antler Coat Hooks|Entryway Hall Tree}, {Stainless Steel|White|Black|Champagne|"
     "Natural}",
     "Household essential with a fingerprint-resistant finish."),
    ("Baby & Kids > Baby Bath", 10, "{brand} {Baby Bathtub with Sling|Foldable Baby Bath Tub|"
     "Infant-to-Toddler Tub|Newborn Bath Seat|Inflatable Baby Bath Tub|Baby Bath Tub with Thermometer}, "
     "{Gray|Blue|Pink|White|Green}",
     "Baby bath tub with a non-slip backrest and drain plug; grows from newborn to toddler."),
    ("Baby & Kids > Nursery", 14, "{brand} {4-in-1 Convertible Crib|Mini Crib|Convertible High Chair|"
     "Changing Table Dresser|Nursery Glider Rocker|29-38 in. Baby Gate|Toy Storage Organizer with Bins|"
     "4-Piece Crib Bedding Set}, {White|Gray|Natural|Sage|Pink}",
     "Nursery essential that meets current safety standards."),
    ("Baby & Kids > Kids Furniture & Play", 18, "{brand} {Kids Table and Chair Set|Kids Desk with Hutch|"
     "Kids Upholstered Armchair|Toddler Fold-Out Couch|Kids Bean Bag Chair|12V Kids Electric Dirt Bike|6V "
     "Ride-On Car|Balance Bike|Wooden Outdoor Playhouse|Kids Play Tent|Indoor Rock Climbing Wall}, {Red|"
     "Blue|Pink|Gray|Natural|Turquoise}",
     "Kid-sized furniture and play gear for ages {3|5} and up."),
    ("Pets > Pet Supplies", 10, "{brand} {Elevated Dog Bowls|Stainless Steel Cat Bowls, 2-Pack|Gravity Pet "
     "Feeder|Tall Free-Standing Pet Gate|Orthopedic Dog Bed|52 in. Cat Tree|Bird Play Stand|Parakeet Toy "
     "Set}",
     "Pet supply built for everyday use; easy to clean."),
    ("Fitness > Free Weights", 6, "{brand} {52.5 lb. Adjustable Dumbbells|Hex Dumbbell Set|Neoprene "
     "Dumbbells, Pair|Cast Iron Kettlebell|Dumbbell Rack}",
     "Home gym equipment with knurled handles for a secure grip."),
    ("Electrical > Wiring Devices & Safety", 18, "{brand} {1-Gang Decorator Wall Plate|5-Gang Decorator "
     "Wall Plate|Music Plug Wall Plate|Single-Pole Light Switch|Smart Dimmer Switch|USB Wall Outlet|"
     "8-Outlet Surge Protector|25 ft. Heavy-Duty Extension Cord}, {White|Matte Black|Ivory|Gray}",
     "UL-listed wiring device for homes and offices."),
    ("Electrical > Wiring Devices & Safety", 5, "{brand} {Smoke and Carbon Monoxide Detector|Hardwired "
     "Smoke Detector with Battery Backup|Natural Gas Detector|10-Year Battery Smoke Alarm}",
     "Home safety alarm with a loud 85 dB siren and test button."),
    ("Office > Office Accessories", 8, "{brand} {Dual Monitor Stand|Monitor Arm Mount|Lectern Podium with "
     "Locking Cabinet|Desk Organizer Set}",
     "Office accessory that keeps the workspace ergonomic and organized."),
    ("Office > Chair Mats", 8, "{brand} {36 in. x 48 in.|46 in. x 60 in.|48 in. x 60 in.} {Clear Vinyl|"
     "Polycarbonate|Tempered Glass} Chair Mat for {Carpet|Hard Floors}",
     "Office chair mat that protects floors and lets casters roll smoothly."),
]
# fmt: on


def lower_words(text: str) -> str:
    """Lower-case words for use mid-sentence, keeping acronyms such as LED, 20V or 2700K."""
    return " ".join(w if w == w.upper() else w.lower() for w in text.split(" "))


def render(template: str, values: dict[str, str], brands: list[str], rng: random.Random) -> str:
    """Fill one template; new picks are stored in ``values``."""

    def pick(match: re.Match[str]) -> str:
        token: str = match.group(1)
        if "=" in token:
            name, options = token.split("=", 1)
            values[name] = rng.choice(options.split("|"))
            return values[name]
        if "|" in token:
            return rng.choice(token.split("|"))
        lower = token.endswith("_lc")
        name = token.removesuffix("_lc")
        if name not in values:
            pool = brands if name == "brand" else POOLS[name]
            values[name] = rng.choice(pool)
        return lower_words(values[name]) if lower else values[name]

    text = TOKEN.sub(pick, template)
    return re.sub(r"\s+", " ", text).replace(" ,", ",").strip()


def generate(rng: random.Random) -> list[dict[str, str]]:
    """Build every product, then shuffle them and assign ids."""
    products: list[dict[str, str]] = []
    seen: set[str] = set()
    for category, count, title_tpl, desc_tpl in SPECS:
        brands = BRANDS[category.split(" > ")[0]]
        made = 0
        for _ in range(count * 40):
            if made == count:
                break
            values: dict[str, str] = {}
            title = render(title_tpl, values, brands, rng)
            if title.lower() in seen:
                continue
            description = render(desc_tpl, values, brands, rng)
            if len(description) > MAX_DESCRIPTION:
                raise ValueError(f"description too long: {description!r}")
            seen.add(title.lower())
            products.append(
                {"title": title, "description": description, "category": category, "brand": values["brand"]}
            )
            made += 1
        if made < count:
            print(f"note: {category}: {made} of {count} (templates exhausted)", file=sys.stderr)
    rng.shuffle(products)
    return [{"id": f"DEMO-{n:06d}", **p} for n, p in enumerate(products, start=1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the synthetic demo catalog CSV.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    rows = generate(random.Random(SEED))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    departments = Counter(row["category"].split(" > ")[0] for row in rows)
    print(f"wrote {len(rows)} products to {args.out}")
    for dept, n in sorted(departments.items()):
        print(f"  {dept}: {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
