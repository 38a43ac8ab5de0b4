//! A bandwidth cap of ours on one link of a host, and the root qdisc it replaces: the tc
//! commands that put the cap on (htb as the device's root qdisc, one capped class, a u32
//! filter per far-end address: a tbf would cap the whole device), reading a device's root
//! qdisc from `tc qdisc show` (the kernel's default, ours, or someone else's), and the command
//! that puts the previous one back. Text only: the host runs it ([`crate::host::Action::Shape`]).
//!
//! Touch only what we added: a root qdisc of someone else's is saved as `tc qdisc show` prints
//! it and replayed afterwards (checked line for line by the fault) where that round-trips (a
//! tbf); any other (a classful one, whose classes and filters one line cannot replay, or one
//! whose printed options its parser refuses) is refused before anything is done.

/// Our root qdisc's handle: how ours is told from anyone else's.
pub const HANDLE: &str = "7a1:";
/// The one capped class under it.
pub const CLASS: &str = "7a1:1";
/// The class's own qdisc, when it has one (a delay's netem).
pub const LEAF: &str = "7a2:";

/// Whether this kernel can make a netem qdisc, asked on a veth pair of our own made and removed
/// at once (nothing of the host's is touched; one left by a probe killed midway goes first): exits 0 when it can, or printing
/// [`NETEM_UNKNOWN`] when the pair could not be made (cannot tell); else fails with tc's own
/// words on its standard error.
pub const NETEM_PROBE: &str = "ip link del plab-q0 2>/dev/null; \
     ip link add plab-q0 type veth peer name plab-q1 || { echo cannot-tell; exit 0; }; \
     out=$(tc qdisc add dev plab-q0 root netem delay 1ms 2>&1); rc=$?; \
     ip link del plab-q0; echo \"$out\" >&2; exit $rc";
/// What [`NETEM_PROBE`] prints when it cannot tell.
pub const NETEM_UNKNOWN: &str = "cannot-tell";

/// A device's root qdisc as `tc qdisc show dev X` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootQdisc {
    pub kind: String,
    pub handle: String,
    /// Its options, as printed after `refcnt N` (`rate 8Mbit burst 16Kb lat 50ms`).
    pub options: String,
    /// The whole line, as printed.
    pub line: String,
}

impl RootQdisc {
    /// The kernel's own default (handle `0:`: noqueue, pfifo_fast, fq_codel, mq): deleting
    /// whatever replaced it brings it back.
    pub fn is_default(&self) -> bool {
        self.handle == "0:"
    }
    /// A cap of ours (a fault's, maybe one whose undo never ran).
    pub fn is_ours(&self) -> bool {
        self.handle == HANDLE && self.kind == "htb"
    }
    /// Comes back as it was from the options `tc qdisc show` prints (checked here for tbf;
    /// fq_codel, pfifo and sfq print `limit 10240p`, which their own parsers refuse).
    pub fn replays(&self) -> bool {
        self.kind == "tbf"
    }
    /// Has classes and filters of its own, which one line cannot replay.
    pub fn is_classful(&self) -> bool {
        const CLASSFUL: &[&str] = &[
            "htb", "hfsc", "cbq", "prio", "drr", "qfq", "ets", "mqprio", "multiq", "taprio", "mq",
        ];
        CLASSFUL.contains(&self.kind.as_str())
    }
}

/// The root qdisc in `tc qdisc show dev X`'s output (`None`: it printed none).
pub fn root_qdisc(show: &str) -> Option<RootQdisc> {
    show.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"qdisc") || words.get(3) != Some(&"root") {
            return None;
        }
        // `qdisc KIND HANDLE root [refcnt N] OPTIONS...`
        let mut rest = &words[4..];
        if rest.first() == Some(&"refcnt") {
            rest = rest.get(2..).unwrap_or_default();
        }
        Some(RootQdisc {
            kind: words[1].to_string(),
            handle: words[2].to_string(),
            options: rest.join(" "),
            line: words.join(" "),
        })
    })
}

/// The devices whose root qdisc is a cap of ours, from `tc qdisc show` over every device
/// (`qdisc htb 7a1: dev eth0 root refcnt 2 ...`).
pub fn our_devices(show_all: &str) -> Vec<String> {
    show_all
        .lines()
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            (w.len() > 5
                && w[0] == "qdisc"
                && w[1] == "htb"
                && w[2] == HANDLE
                && w[3] == "dev"
                && w[5] == "root")
                .then(|| w[4].to_string())
        })
        .collect()
}

/// Whether `show` (`tc qdisc show dev X`) has a qdisc whose parent is `root`.
pub fn has_children(show: &str, root: &RootQdisc) -> bool {
    let parent = root.handle.trim_end_matches(':');
    show.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.windows(2)
            .any(|p| p[0] == "parent" && p[1].split(':').next() == Some(parent))
    })
}

/// A rate as tc prints it back (`256Kbit`, `1Mbit`, `64000bit`; tc's K is 1000) in bits per
/// second.
pub fn tc_rate_bits(rate: &str) -> Option<u64> {
    let (n, scale) = [
        ("Gbit", 1_000_000_000.0),
        ("Mbit", 1_000_000.0),
        ("Kbit", 1_000.0),
        ("bit", 1.0),
    ]
    .iter()
    .find_map(|(u, s)| rate.strip_suffix(u).map(|n| (n, *s)))?;
    let v: f64 = n.parse().ok()?;
    Some((v * scale).round() as u64)
}

/// The device a host reaches `address` through, from `ip -o route get ADDRESS`
/// (`10.0.0.2 dev eth0 src 10.0.0.3 uid 0`).
pub fn device_for(route: &str) -> Option<String> {
    let words: Vec<&str> = route.split_whitespace().collect();
    // A name as the kernel allows it that a shell takes as one word.
    words
        .windows(2)
        .find(|w| w[0] == "dev")
        .map(|w| w[1])
        .filter(|d| {
            d.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        })
        .map(str::to_string)
}

/// The `tc -batch` lines that cap what `device` sends to `peers` at `bits_per_second`:
/// our htb as the root qdisc (unclassified traffic passes uncapped), one class at the rate,
/// a u32 filter per address.
pub fn cap_script(device: &str, peers: &[&str], bits_per_second: u64) -> String {
    classed(device, peers, bits_per_second, None)
}

/// The `tc -batch` lines that delay what `device` sends to `peers` by `ms`: as
/// [`cap_script`] with the class uncapped (10 Gbit/s) and a netem qdisc under it.
pub fn delay_script(device: &str, peers: &[&str], ms: u32) -> String {
    classed(
        device,
        peers,
        10_000_000_000,
        Some(&format!("netem delay {ms}ms")),
    )
}

/// Our htb root, one class at `bits_per_second` (with `leaf` as its qdisc, if any), a u32
/// filter per address into it.
fn classed(device: &str, peers: &[&str], bits_per_second: u64, leaf: Option<&str>) -> String {
    let mut s = format!(
        "qdisc replace dev {device} root handle {HANDLE} htb\n\
         class add dev {device} parent {HANDLE} classid {CLASS} htb rate {bits_per_second}bit ceil {bits_per_second}bit\n"
    );
    if let Some(leaf) = leaf {
        s.push_str(&format!(
            "qdisc add dev {device} parent {CLASS} handle {LEAF} {leaf}\n"
        ));
    }
    for ip in peers {
        s.push_str(&format!(
            "filter add dev {device} parent {HANDLE} protocol ip prio 1 u32 match ip dst {ip}/32 flowid {CLASS}\n"
        ));
    }
    s
}

/// The command that takes our cap off `device` and puts `saved` back (`None`: the kernel's
/// default comes back by itself once ours is deleted).
pub fn restore_argv(device: &str, saved: Option<&RootQdisc>) -> Vec<String> {
    let mut argv: Vec<String> = ["tc", "qdisc"].map(String::from).to_vec();
    match saved {
        None => argv.extend(["del", "dev", device, "root"].map(String::from)),
        Some(q) => {
            argv.extend(
                [
                    "replace", "dev", device, "root", "handle", &q.handle, &q.kind,
                ]
                .map(String::from),
            );
            argv.extend(q.options.split_whitespace().map(String::from));
        }
    }
    argv
}

/// What our capped class has sent so far and how often it held a packet back, from
/// `tc -s class show dev X classid 7a1:1` (`Sent 1234 bytes 9 pkt (dropped 0, overlimits 5
/// requeues 0)`).
pub fn class_counts(stats: &str) -> Option<(u64, u64)> {
    let words: Vec<&str> = stats
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect();
    let after = |key: &str| {
        words
            .windows(2)
            .find(|w| w[0] == key)
            .and_then(|w| w[1].parse::<u64>().ok())
    };
    Some((after("Sent")?, after("overlimits")?))
}

/// The shell script that runs [`restore_argv`] only while the root qdisc of `device` is ours:
/// when our shaping never got on (its first tc line failed) or someone else's root has taken
/// its place since, nothing is touched.
pub fn restore_script(device: &str, saved: Option<&RootQdisc>) -> String {
    format!(
        "if tc qdisc show dev {device} | grep -q '^qdisc htb {HANDLE} root'; then {}; fi",
        restore_argv(device, saved).join(" ")
    )
}

/// Our class's rate as `tc class show` prints it back (`256Kbit`).
pub fn class_rate(stats: &str) -> Option<&str> {
    let words: Vec<&str> = stats.split_whitespace().collect();
    words.windows(2).find(|w| w[0] == "rate").map(|w| w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_qdisc_is_read_as_printed_and_told_apart() {
        let default = root_qdisc("qdisc noqueue 0: root refcnt 2 \n").unwrap();
        assert!(default.is_default() && !default.is_ours());
        let tbf =
            root_qdisc("qdisc tbf 8001: root refcnt 2 rate 8Mbit burst 16Kb lat 50ms \n").unwrap();
        assert_eq!(tbf.kind, "tbf");
        assert_eq!(tbf.options, "rate 8Mbit burst 16Kb lat 50ms");
        assert!(!tbf.is_default() && !tbf.is_classful());
        let ours = root_qdisc(
            "qdisc htb 7a1: root refcnt 2 r2q 10 default 0 direct_packets_stat 3 direct_qlen 1000\n",
        )
        .unwrap();
        assert!(ours.is_ours() && ours.is_classful());
        // A child qdisc is not the root; no root at all is None.
        assert_eq!(
            root_qdisc("qdisc pfifo 10: parent 7a1:1 limit 1000p\n"),
            None
        );
        assert_eq!(root_qdisc(""), None);
    }

    #[test]
    fn a_cap_of_ours_is_found_on_its_device_among_all() {
        let all = "qdisc noqueue 0: dev lo root refcnt 2 \n\
                   qdisc htb 7a1: dev eth0 root refcnt 2 r2q 10 default 0 direct_packets_stat 1 direct_qlen 1000\n\
                   qdisc htb 1: dev eth1 root refcnt 2 r2q 10 default 0\n\
                   qdisc pfifo 8002: dev eth0 parent 7a1:1 limit 1000p\n";
        assert_eq!(our_devices(all), vec!["eth0".to_string()]);
        assert!(our_devices("qdisc noqueue 0: dev eth0 root refcnt 2").is_empty());
    }

    #[test]
    fn the_cap_is_our_htb_with_one_class_and_a_filter_per_address() {
        let s = cap_script("eth0", &["10.0.0.2", "10.0.0.4"], 1_000_000);
        assert_eq!(
            s,
            "qdisc replace dev eth0 root handle 7a1: htb\n\
             class add dev eth0 parent 7a1: classid 7a1:1 htb rate 1000000bit ceil 1000000bit\n\
             filter add dev eth0 parent 7a1: protocol ip prio 1 u32 match ip dst 10.0.0.2/32 flowid 7a1:1\n\
             filter add dev eth0 parent 7a1: protocol ip prio 1 u32 match ip dst 10.0.0.4/32 flowid 7a1:1\n"
        );
    }

    #[test]
    fn a_delay_is_a_netem_under_our_uncapped_class() {
        let s = delay_script("eth0", &["10.0.0.2"], 200);
        assert_eq!(
            s,
            "qdisc replace dev eth0 root handle 7a1: htb\n\
             class add dev eth0 parent 7a1: classid 7a1:1 htb rate 10000000000bit ceil 10000000000bit\n\
             qdisc add dev eth0 parent 7a1:1 handle 7a2: netem delay 200ms\n\
             filter add dev eth0 parent 7a1: protocol ip prio 1 u32 match ip dst 10.0.0.2/32 flowid 7a1:1\n"
        );
        // Nothing but our own pair is made, and it is removed whatever tc said.
        // A pair an earlier probe left (killed midway) goes first, so it cannot make the check pass.
        assert!(
            NETEM_PROBE
                .starts_with("ip link del plab-q0 2>/dev/null; ip link add plab-q0 type veth")
        );
        assert!(NETEM_PROBE.contains(NETEM_UNKNOWN));
        assert!(NETEM_PROBE.contains("tc qdisc add dev plab-q0 root netem"));
        assert!(NETEM_PROBE.contains("ip link del plab-q0;"));
    }

    #[test]
    fn the_previous_root_comes_back_deleted_to_the_default_or_replayed() {
        assert_eq!(
            restore_argv("eth0", None).join(" "),
            "tc qdisc del dev eth0 root"
        );
        let tbf =
            root_qdisc("qdisc tbf 8001: root refcnt 2 rate 8Mbit burst 16Kb lat 50ms").unwrap();
        assert_eq!(
            restore_argv("eth0", Some(&tbf)).join(" "),
            "tc qdisc replace dev eth0 root handle 8001: tbf rate 8Mbit burst 16Kb lat 50ms"
        );
        // Only ours is ever taken off.
        assert_eq!(
            restore_script("eth0", None),
            "if tc qdisc show dev eth0 | grep -q '^qdisc htb 7a1: root'; then tc qdisc del dev eth0 root; fi"
        );
    }

    #[test]
    fn the_device_and_the_class_counts_are_read_from_the_tools_output() {
        assert_eq!(
            device_for("10.0.0.2 dev eth0 src 10.0.0.3 uid 0 \\    cache "),
            Some("eth0".into())
        );
        assert_eq!(
            device_for("RTNETLINK answers: Network is unreachable"),
            None
        );
        assert_eq!(device_for("10.0.0.2 dev e;rm src 10.0.0.3"), None);
        assert_eq!(tc_rate_bits("256Kbit"), Some(256_000));
        assert_eq!(tc_rate_bits("1Mbit"), Some(1_000_000));
        assert_eq!(tc_rate_bits("10Gbit"), Some(10_000_000_000));
        assert_eq!(tc_rate_bits("64000bit"), Some(64_000));
        let tbf =
            root_qdisc("qdisc tbf 8001: root refcnt 2 rate 8Mbit burst 16Kb lat 50ms").unwrap();
        assert!(has_children(
            "qdisc tbf 8001: root refcnt 2 rate 8Mbit\nqdisc netem 10: parent 8001:1 limit 1000 delay 5ms\n",
            &tbf
        ));
        assert!(!has_children(
            "qdisc tbf 8001: root refcnt 2 rate 8Mbit\n",
            &tbf
        ));
        let stats = "class htb 7a1:1 root prio 0 rate 1Mbit ceil 1Mbit burst 1600b cburst 1600b \n Sent 65160 bytes 45 pkt (dropped 0, overlimits 31 requeues 0) \n backlog 0b 0p requeues 0\n";
        assert_eq!(class_counts(stats), Some((65160, 31)));
        assert_eq!(class_rate(stats), Some("1Mbit"));
        assert_eq!(class_counts("class htb 7a1:1 root"), None);
    }
}
