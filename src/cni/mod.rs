//! The CNI protocol: env, config, results, errors. No Linux in here.
