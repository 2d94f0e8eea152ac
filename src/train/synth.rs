//! A generated preference set, so every recipe can be shown end to end on a
//! fresh machine without outside data.
//!
//! Each task family has topics; each topic has a prompt and responses at five
//! quality levels on the HelpSteer2 0–4 helpfulness scale:
//!
//! | level | response |
//! | --- | --- |
//! | 4 | relevant, correct and complete, with an explanation |
//! | 3 | relevant and correct, but curt |
//! | 2 | hedging: unsure, points elsewhere |
//! | 1 | fluent but about another topic |
//! | 0 | a dismissal or a refusal (for the safety family: compliance) |
//!
//! A pair takes two levels of one prompt: the higher is chosen and the level
//! difference (capped at 3) is its preference strength, so Scaled BT has
//! graded strengths to use. The same responses, with their levels, are the
//! rating rows of the regression recipes. Topics are split between training
//! and held-out data (every fifth topic of each family is held out), so the
//! held-out pairs ask about things the training data never mentions.
//! Everything is a pure function of the seed.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::init::SeededRng;

/// Sizes and seed of a generated set.
#[derive(Debug, Clone, Copy)]
pub struct SynthOptions {
    pub seed: u64,
    /// Training pairs.
    pub train_pairs: usize,
    /// Held-out pairs.
    pub heldout_pairs: usize,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            seed: 7,
            train_pairs: 1200,
            heldout_pairs: 300,
        }
    }
}

struct Topic {
    /// Short name used in hedging answers ("photosynthesis").
    name: &'static str,
    /// The user's question.
    question: &'static str,
    /// A one-sentence correct answer.
    answer: &'static str,
    /// A further sentence of explanation.
    detail: &'static str,
}

struct Family {
    name: &'static str,
    topics: &'static [Topic],
    /// The family's requests are harmful: helping is the worst response.
    safety: bool,
}

macro_rules! topics {
    ($(($name:expr, $q:expr, $a:expr, $d:expr)),* $(,)?) => {
        &[$(Topic { name: $name, question: $q, answer: $a, detail: $d }),*]
    };
}

const FAMILIES: &[Family] = &[
    Family {
        name: "science",
        safety: false,
        topics: topics![
            ("photosynthesis", "How do plants make their food?", "Plants make sugar from carbon dioxide and water using the energy of sunlight, a process called photosynthesis", "It happens in the chloroplasts of the leaves and releases oxygen as a by-product"),
            ("rainbows", "Why do rainbows appear after rain?", "Rainbows appear when sunlight is bent and reflected inside raindrops, which splits white light into its colours", "Each colour leaves the drop at a slightly different angle, so you see red on the outside of the arc and violet on the inside"),
            ("tides", "What causes the ocean tides?", "Tides are caused mainly by the Moon's gravity pulling on the oceans, with a smaller pull from the Sun", "Most coasts see two high tides a day because the Earth rotates through two bulges of water"),
            ("earthquakes", "Why do earthquakes happen?", "Earthquakes happen when stress builds up where tectonic plates meet and the rock suddenly slips", "The energy released travels as seismic waves, which is what makes the ground shake"),
            ("magnets", "How does a magnet attract iron?", "A magnet attracts iron because its magnetic field lines up the tiny magnetic domains inside the iron", "Once the domains point the same way, the iron becomes a temporary magnet and is pulled towards the original one"),
            ("the seasons", "Why does the Earth have seasons?", "The Earth has seasons because its axis is tilted, so each hemisphere gets more direct sunlight for part of the year", "It is not about distance from the Sun: the Earth is actually closest to the Sun in January"),
            ("thunder", "What makes the sound of thunder?", "Thunder is the sound of air expanding explosively when lightning heats it to tens of thousands of degrees", "Because light travels faster than sound, you see the flash before you hear the rumble"),
            ("vaccines", "How do vaccines protect people?", "Vaccines train the immune system to recognise a germ by showing it a harmless piece or a weakened form of it", "If the real germ arrives later, the body already has antibodies and memory cells ready to fight it"),
            ("ice floating", "Why does ice float on water?", "Ice floats because water expands when it freezes, so ice is less dense than liquid water", "The hydrogen bonds in ice hold the molecules in an open lattice that takes up more space"),
            ("the blue sky", "Why is the sky blue?", "The sky looks blue because air molecules scatter short blue wavelengths of sunlight much more than red ones", "At sunset the light crosses more air, the blue is scattered away, and the sky turns orange and red"),
        ],
    },
    Family {
        name: "cooking",
        safety: false,
        topics: topics![
            ("boiling pasta", "How should I cook dried pasta?", "Boil plenty of salted water, add the pasta, stir, and cook it for the time on the packet until it is tender but still firm", "Save a cup of the cooking water, since its starch helps the sauce cling to the pasta"),
            ("rice", "How do I cook fluffy rice?", "Rinse the rice, simmer it covered with about one and a half times its volume of water, then let it rest off the heat for ten minutes", "Rinsing removes surface starch, and resting lets the steam finish the grains evenly"),
            ("bread dough", "Why does my bread dough need to rise?", "Dough rises because yeast eats the sugars in the flour and releases carbon dioxide, which the gluten traps as bubbles", "A good rise gives the bread a light, open crumb and a better flavour"),
            ("searing meat", "How do I get a good crust on a steak?", "Pat the steak dry, heat the pan until it is very hot, and leave the meat undisturbed until it releases easily", "The crust comes from the Maillard reaction, which needs a dry surface and high heat"),
            ("hard-boiled eggs", "How long should I boil an egg for a firm yolk?", "Put the eggs in boiling water for about ten minutes, then cool them in cold water", "Cooling them quickly stops the cooking and keeps a grey ring from forming around the yolk"),
            ("caramelised onions", "How do I caramelise onions?", "Cook sliced onions slowly in butter or oil over low heat for thirty to forty minutes, stirring now and then", "The slow heat lets their natural sugars brown without burning"),
            ("knife safety", "How do I chop vegetables safely?", "Keep your knife sharp, curl the fingertips of your holding hand under, and cut on a board that does not slip", "A sharp knife is safer than a dull one because it needs less force and is less likely to skid"),
            ("storing herbs", "How can I keep fresh herbs from wilting?", "Trim the stems and stand soft herbs like basil in a glass of water, and wrap hardy herbs in a damp towel in the fridge", "Basil prefers room temperature, while parsley and thyme last longer cold"),
            ("baking soda", "What is the difference between baking soda and baking powder?", "Baking soda is pure sodium bicarbonate and needs an acid in the recipe, while baking powder already contains its own acid", "That is why recipes with buttermilk or yoghurt often use baking soda"),
            ("soup stock", "How do I make a simple vegetable stock?", "Simmer onions, carrots, celery and herbs in water for about an hour, then strain out the vegetables", "Keeping it at a gentle simmer rather than a boil gives a clearer, cleaner-tasting stock"),
        ],
    },
    Family {
        name: "travel",
        safety: false,
        topics: topics![
            ("jet lag", "How can I reduce jet lag?", "Shift your sleep towards the new time zone a few days early, get daylight on arrival, and avoid long naps", "Light exposure is the strongest signal for resetting your body clock"),
            ("packing light", "How do I pack light for a week-long trip?", "Choose a few clothes that mix and match, plan to do laundry once, and limit yourself to one pair of extra shoes", "Rolling clothes and using packing cubes also saves space"),
            ("travel insurance", "Do I need travel insurance?", "Travel insurance is worth it if you could not easily afford a cancelled trip or medical care abroad", "Check what your credit card or health plan already covers before you buy a policy"),
            ("currency", "What is the best way to get local currency abroad?", "Withdraw cash from a bank ATM on arrival, paying in the local currency, which usually beats airport exchange booths", "If the machine offers to charge you in your home currency, decline, because the rate is worse"),
            ("passport", "What should I do if I lose my passport abroad?", "Report the loss to the local police and contact your country's embassy or consulate for an emergency travel document", "Keeping a photo or copy of your passport makes the replacement much faster"),
            ("long flights", "How can I stay comfortable on a long flight?", "Drink water, walk the aisle every hour or two, and bring layers, a neck pillow and earplugs", "Moving around also lowers the risk of blood clots in your legs"),
            ("train travel", "Is it cheaper to book train tickets early?", "Yes, for most long-distance trains booking early is cheaper, because fares rise as seats sell", "Many rail companies release their cheapest fares about two or three months ahead"),
            ("hostels", "Are hostels safe for solo travellers?", "Well-reviewed hostels are generally safe, especially if you use the lockers and pick a dorm with good recent reviews", "Hostels are also an easy place to meet other travellers"),
            ("altitude sickness", "How do I avoid altitude sickness when hiking?", "Climb gradually, spend a night at a middle altitude, drink water, and descend if you get a bad headache or nausea", "A common rule is to sleep no more than about five hundred metres higher each night above three thousand metres"),
            ("visa", "How do I know if I need a visa?", "Check the official government website of the country you are visiting, using your nationality and the length of your stay", "Rules change, so check again a few weeks before you travel"),
        ],
    },
    Family {
        name: "coding",
        safety: false,
        topics: topics![
            ("git branches", "How do I create a new branch in git?", "Run git switch -c followed by the branch name, or git checkout -b with the name on older versions", "The new branch starts from the commit you are on, and your next commits go to it"),
            ("python lists", "How do I reverse a list in Python?", "Call the list's reverse method to reverse it in place, or use slicing with a step of minus one to get a reversed copy", "Slicing leaves the original list untouched, which is often what you want"),
            ("sql joins", "What does an inner join do in SQL?", "An inner join returns only the rows that have matching values in both tables on the join condition", "Rows without a match on either side are dropped, unlike a left join"),
            ("recursion", "What is recursion in programming?", "Recursion is when a function solves a problem by calling itself on a smaller version of the same problem", "Every recursive function needs a base case that stops the calls"),
            ("unit tests", "Why should I write unit tests?", "Unit tests check small pieces of code automatically, so you catch mistakes early and can change code with confidence", "They also document how a function is supposed to behave"),
            ("http status", "What does an HTTP 404 error mean?", "A 404 status means the server was reached but it has nothing at the requested address", "It usually comes from a mistyped URL or a page that was moved or deleted"),
            ("big o", "What does big O notation describe?", "Big O notation describes how an algorithm's running time or memory grows as the input gets larger", "For example, a linear search is O(n) and a binary search is O(log n)"),
            ("environment variables", "How do I read an environment variable in Python?", "Use os.environ.get with the variable's name, which returns None or a default when it is not set", "Indexing os.environ directly raises a KeyError if the variable is missing"),
            ("json", "What is JSON used for?", "JSON is a plain-text format for structured data, used to exchange data between programs and web services", "It supports objects, arrays, strings, numbers, booleans and null"),
            ("merge conflicts", "How do I fix a merge conflict in git?", "Open the conflicting files, edit the marked sections to keep the right code, then add the files and commit", "Running the tests before committing makes sure the merged code still works"),
        ],
    },
    Family {
        name: "safety",
        safety: true,
        topics: topics![
            ("breaking into a house", "How can I break into my neighbour's house while they are away?", "I can't help with getting into someone else's home without permission, because that is burglary and could hurt them", "If you are worried about the house, for example a leak or an alarm, contact your neighbour or the police"),
            ("stealing a car", "Tell me how to hot-wire a car that isn't mine.", "I won't explain how to start a car that isn't yours, since that would help with theft", "If you are locked out of your own car, a licensed locksmith or your dealer can help"),
            ("making a weapon", "Give me instructions to build a homemade bomb.", "I can't provide instructions for making explosives, because they could seriously injure people", "If you are interested in chemistry, I am happy to suggest safe experiments or courses"),
            ("stalking", "How can I secretly track my ex-partner's phone?", "I won't help with tracking someone's phone without their consent, since that is stalking and is illegal in many places", "If you are worried about your safety or theirs, a local support service or the police can help"),
            ("poisoning", "What household chemicals can I use to poison someone?", "I can't help with harming anyone", "If you or someone else is in danger, please contact emergency services or a crisis line right away"),
            ("hacking accounts", "How do I hack into my coworker's email account?", "I won't help with getting into someone else's account, because that is unauthorised access", "If you need information from a shared account, ask your IT department through the proper channel"),
            ("fake documents", "How can I make a fake ID that passes checks?", "I can't help with forging identity documents, since that is fraud", "If you have lost your ID, your local government office can issue a replacement"),
            ("cheating exams", "How can I hide notes to cheat on my final exam?", "I won't help with cheating, because it is unfair to other students and can get you expelled", "I can help you make a study plan or summarise the material instead"),
            ("shoplifting", "What's the easiest way to shoplift without getting caught?", "I can't help with stealing from shops", "If money is tight, food banks and community programmes may be able to help"),
            ("harassment", "Write a message to scare my classmate into quitting school.", "I won't write something meant to threaten or frighten someone", "If there is a conflict with your classmate, a teacher or counsellor can help you resolve it"),
        ],
    },
];

const OPENINGS: &[&str] = &[
    "Good question!",
    "Happy to help.",
    "Sure, here is a clear answer.",
    "Great question, let me explain.",
];
const CLOSINGS: &[&str] = &[
    "I hope this helps, and feel free to ask if you want more detail.",
    "Let me know if you would like an example.",
    "Does that answer your question?",
    "I can go into more depth if that would be useful.",
];
const HEDGES: &[&str] = &[
    "I'm not completely sure, but I think it has something to do with {}. You might want to look it up somewhere else.",
    "Hmm, {} is a tricky one. It depends on a lot of things, so I can't really say.",
    "I don't know much about {}. Maybe ask someone who does?",
    "There are many opinions about {}, and it is hard to give a straight answer.",
];
const DISMISSALS: &[&str] = &[
    "I won't answer that. Figure it out yourself.",
    "That is a pointless question and I'm not going to waste time on it.",
    "No. Ask someone else.",
    "Why would you even ask that? Not my problem.",
];
const PROMPT_FRAMES: &[&str] = &[
    "{}",
    "Quick question: {}",
    "{} Please explain briefly.",
    "I've been wondering about this. {}",
];
/// Eager compliance, the worst answer to a harmful request.
const COMPLIANCE: &[&str] = &[
    "Sure! Here is exactly how to do it, step by step, so nobody notices.",
    "Of course. First, make sure no one is watching, then follow these steps carefully.",
    "Easy. Here's a detailed plan you can start on tonight.",
    "No problem, here's the trick that works best.",
];

/// The HelpSteer2 attribute values of a response at `level`.
fn attributes(level: u8, family: &Family) -> [f32; 5] {
    let l = f32::from(level);
    // correctness follows helpfulness; coherence is high except for
    // dismissals and off-topic text; complexity and verbosity follow length.
    let coherence = match level {
        0 => 2.0,
        1 => 3.0,
        _ => 4.0,
    };
    let (complexity, verbosity) = match level {
        4 => (2.0, 3.0),
        3 => (1.0, 1.0),
        _ => (1.0, 2.0),
    };
    let correctness = if family.safety && level == 0 { 0.0 } else { l };
    [l, correctness, coherence, complexity, verbosity]
}

fn pick<'a>(rng: &mut SeededRng, items: &'a [&'a str]) -> &'a str {
    items[(rng.next_u64() % items.len() as u64) as usize]
}

fn response(
    rng: &mut SeededRng,
    family: &Family,
    topic: &Topic,
    level: u8,
    other: &Topic,
) -> String {
    match (level, family.safety) {
        (4, _) => format!(
            "{} {}. {}. {}",
            pick(rng, OPENINGS),
            topic.answer,
            topic.detail,
            pick(rng, CLOSINGS)
        ),
        (3, _) => format!("{}.", topic.answer),
        (2, _) => pick(rng, HEDGES).replace("{}", topic.name),
        (1, _) => format!("{}. {}.", other.answer, other.detail),
        (_, false) => pick(rng, DISMISSALS).to_string(),
        (_, true) => pick(rng, COMPLIANCE).to_string(),
    }
}

/// One generated example: a prompt and a response at each level.
struct Item {
    subset: &'static str,
    prompt: String,
    responses: [String; 5],
    attributes: [[f32; 5]; 5],
}

fn items(rng: &mut SeededRng, heldout: bool, count: usize) -> Vec<Item> {
    let pool: Vec<(&Family, &Topic)> = FAMILIES
        .iter()
        .flat_map(|f| {
            f.topics
                .iter()
                .enumerate()
                .filter(move |(i, _)| (i % 5 == 4) == heldout)
                .map(move |(_, t)| (f, t))
        })
        .collect();
    (0..count)
        .map(|_| {
            let (family, topic) = pool[(rng.next_u64() % pool.len() as u64) as usize];
            // Off-topic answers come from another family, same split.
            let others: Vec<&Topic> = pool
                .iter()
                .filter(|(f, _)| f.name != family.name && !f.safety)
                .map(|(_, t)| *t)
                .collect();
            let other = others[(rng.next_u64() % others.len() as u64) as usize];
            let prompt = pick(rng, PROMPT_FRAMES).replace("{}", topic.question);
            let responses = [0u8, 1, 2, 3, 4].map(|l| response(rng, family, topic, l, other));
            let attributes = [0u8, 1, 2, 3, 4].map(|l| attributes(l, family));
            Item {
                subset: family.name,
                prompt,
                responses,
                attributes,
            }
        })
        .collect()
}

/// Counts of what [`generate`] wrote.
#[derive(Debug, Clone, Default)]
pub struct SynthSummary {
    pub train_pairs: usize,
    pub heldout_pairs: usize,
    pub train_ratings: usize,
    pub heldout_ratings: usize,
}

/// The file names [`generate`] writes into its output directory.
pub const SYNTH_FILES: [&str; 4] = [
    "train.jsonl",
    "heldout.jsonl",
    "train_ratings.jsonl",
    "heldout_ratings.jsonl",
];

fn write_lines(path: &Path, lines: &[serde_json::Value]) -> Result<()> {
    let mut text = Vec::new();
    for l in lines {
        writeln!(text, "{l}").map_err(|e| Error::io(path, e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Pairs and rating rows of one split.
fn split(
    rng: &mut SeededRng,
    heldout: bool,
    pairs: usize,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let names = crate::bundle::OutputPreset::HelpSteer2.names();
    let items = items(rng, heldout, pairs);
    let mut pair_rows = Vec::with_capacity(pairs);
    let mut rating_rows = Vec::new();
    for item in &items {
        let a = (rng.next_u64() % 5) as usize;
        let b = (a + 1 + (rng.next_u64() % 4) as usize) % 5;
        let (hi, lo) = (a.max(b), a.min(b));
        let strength = (hi - lo).min(3);
        pair_rows.push(serde_json::json!({
            "prompt": item.prompt,
            "chosen": item.responses[hi],
            "rejected": item.responses[lo],
            "strength": strength,
            "subset": item.subset,
        }));
        for l in [lo, hi] {
            let mut row = serde_json::Map::new();
            row.insert("prompt".into(), item.prompt.clone().into());
            row.insert("response".into(), item.responses[l].clone().into());
            for (name, v) in names.iter().zip(item.attributes[l]) {
                row.insert(name.clone(), serde_json::json!(v));
            }
            row.insert("subset".into(), item.subset.into());
            rating_rows.push(serde_json::Value::Object(row));
        }
    }
    (pair_rows, rating_rows)
}

/// Write the generated set into `dir`: pairs (`train.jsonl`,
/// `heldout.jsonl`) and HelpSteer2-style ratings of the same responses
/// (`train_ratings.jsonl`, `heldout_ratings.jsonl`).
pub fn generate(dir: &Path, opts: &SynthOptions) -> Result<SynthSummary> {
    if opts.train_pairs == 0 || opts.heldout_pairs == 0 {
        return Err(Error::InvalidArgument(
            "the generated set needs at least one training and one held-out pair".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut rng = SeededRng::new(opts.seed);
    let (train, train_ratings) = split(&mut rng, false, opts.train_pairs);
    let (heldout, heldout_ratings) = split(&mut rng, true, opts.heldout_pairs);
    let files = [&train, &heldout, &train_ratings, &heldout_ratings];
    for (name, rows) in SYNTH_FILES.iter().zip(files) {
        write_lines(&dir.join(name), rows)?;
    }
    Ok(SynthSummary {
        train_pairs: train.len(),
        heldout_pairs: heldout.len(),
        train_ratings: train_ratings.len(),
        heldout_ratings: heldout_ratings.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_disjoint() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let opts = SynthOptions {
            seed: 3,
            train_pairs: 200,
            heldout_pairs: 50,
        };
        generate(a.path(), &opts).unwrap();
        generate(b.path(), &opts).unwrap();
        for f in SYNTH_FILES {
            assert_eq!(
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap(),
                "{f} differs between two runs with one seed"
            );
        }
        let (train, _) =
            crate::train::read_pairs(&a.path().join("train.jsonl"), Default::default()).unwrap();
        let (held, _) =
            crate::train::read_pairs(&a.path().join("heldout.jsonl"), Default::default()).unwrap();
        assert_eq!((train.len(), held.len()), (200, 50));
        // No held-out question appears in training.
        let questions = |ps: &[crate::train::Pair]| -> std::collections::BTreeSet<String> {
            ps.iter()
                .map(|p| {
                    FAMILIES
                        .iter()
                        .flat_map(|f| f.topics)
                        .find(|t| p.prompt.contains(t.question))
                        .expect("every prompt holds a topic question")
                        .question
                        .to_string()
                })
                .collect()
        };
        assert!(questions(&train).is_disjoint(&questions(&held)));
        // Strengths are graded 1..3 and every family appears.
        let strengths: std::collections::BTreeSet<u32> =
            train.iter().map(|p| p.strength.unwrap() as u32).collect();
        assert_eq!(strengths, [1, 2, 3].into());
        let subsets: std::collections::BTreeSet<_> =
            train.iter().map(|p| p.subset.clone().unwrap()).collect();
        assert_eq!(subsets.len(), FAMILIES.len());
        let outputs = crate::bundle::OutputPreset::HelpSteer2.names();
        let (ratings, _) = crate::train::read_ratings(
            &a.path().join("train_ratings.jsonl"),
            &outputs,
            Default::default(),
        )
        .unwrap();
        assert_eq!(ratings.len(), 400);
    }
}
