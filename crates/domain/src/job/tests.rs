//! The wire formats of jobs, groups and batches.

use super::*;

#[test]
fn wire_format_is_stable() {
    let job = DeliveryJob {
        v: JOB_VERSION,
        job_id: 7,
        message_id: Uuid::nil(),
        endpoint_id: Uuid::nil(),
        attempt: 2,
        trigger: TriggerType::Manual,
        deferrals: 0,
        context: None,
    };
    let text = serde_json::to_string(&job).unwrap();
    assert_eq!(
        text,
        r#"{"v":1,"jobId":7,"messageId":"00000000-0000-0000-0000-000000000000","endpointId":"00000000-0000-0000-0000-000000000000","attempt":2,"trigger":"manual"}"#
    );
    assert_eq!(serde_json::from_str::<DeliveryJob>(&text).unwrap(), job);
    let waited = DeliveryJob {
        deferrals: 3,
        ..job
    };
    let text = serde_json::to_string(&waited).unwrap();
    assert!(
        text.ends_with(r#""trigger":"manual","deferrals":3}"#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<DeliveryJob>(&text).unwrap(), waited);
}

#[test]
fn a_carried_context_travels_with_its_job_and_can_be_dropped() {
    let job = DeliveryJob {
        v: JOB_VERSION,
        job_id: 7,
        message_id: Uuid::nil(),
        endpoint_id: Uuid::nil(),
        attempt: 0,
        trigger: TriggerType::Scheduled,
        deferrals: 0,
        context: Some(Box::new(CarriedContext {
            payload: r#"{"a":"\u00e9"}"#.into(),
            accepted_us: 1_700_000_000_000_000,
            url: "https://hooks.example/a".into(),
            headers: serde_json::json!({"x-a": "1"}),
            failing_since_us: None,
            rate_limit: Some(5),
            secrets: vec!["whsec_a".into()],
        })),
    };
    let mut carried = Carried::read(&Carried::Job(job.clone()).to_body().unwrap()).unwrap();
    assert_eq!(carried, Carried::Job(job.clone()));
    carried.forget_context();
    let Carried::Job(bare) = carried else {
        panic!("a job reads as a job");
    };
    assert_eq!(
        bare,
        DeliveryJob {
            context: None,
            ..job
        }
    );
    // A reader takes a job with fields it does not know, as one of this build reads a
    // later build's context.
    let later = br#"{"v":1,"jobId":7,"messageId":"00000000-0000-0000-0000-000000000000","endpointId":"00000000-0000-0000-0000-000000000000","attempt":0,"trigger":"scheduled","context":{"payload":"{}","acceptedUs":1,"url":"https://x","headers":{},"secrets":[],"more":1},"other":true}"#;
    assert!(matches!(Carried::read(later), Ok(Carried::Job(job)) if job.context.is_some()));
}

#[test]
fn a_group_reads_back_as_its_jobs_and_version_one_still_reads() {
    let endpoint = Uuid::from_u128(1);
    let group = JobGroup {
        v: GROUP_VERSION,
        message_id: Uuid::nil(),
        jobs: vec![
            GroupedJob {
                job_id: 7,
                endpoint_id: endpoint,
            },
            GroupedJob {
                job_id: 8,
                endpoint_id: Uuid::nil(),
            },
        ],
    };
    let body = Carried::Group(group.clone()).to_body().unwrap();
    assert_eq!(
        String::from_utf8(body.clone()).unwrap(),
        r#"{"v":2,"messageId":"00000000-0000-0000-0000-000000000000","jobs":[{"jobId":7,"endpointId":"00000000-0000-0000-0000-000000000001"},{"jobId":8,"endpointId":"00000000-0000-0000-0000-000000000000"}]}"#
    );
    let Carried::Group(read) = Carried::read(&body).unwrap() else {
        panic!("a group reads as a group");
    };
    let jobs: Vec<DeliveryJob> = read.jobs().collect();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(DeliveryJob::groupable));
    assert_eq!((jobs[0].job_id, jobs[0].endpoint_id), (7, endpoint));

    let single = br#"{"v":1,"jobId":7,"messageId":"00000000-0000-0000-0000-000000000000","endpointId":"00000000-0000-0000-0000-000000000000","attempt":2,"trigger":"manual"}"#;
    assert!(matches!(Carried::read(single), Ok(Carried::Job(job)) if job.attempt == 2));
    assert!(matches!(
        Carried::read(br#"{"v":4,"jobs":[]}"#),
        Err(UnreadableJob::Version(4))
    ));
    assert!(matches!(
        Carried::read(b"nope"),
        Err(UnreadableJob::Invalid(_))
    ));
}

#[test]
fn a_batch_carries_each_job_with_its_context_and_trace() {
    let context = CarriedContext {
        payload: "{}".into(),
        accepted_us: 1,
        url: "https://hooks.example/a".into(),
        headers: serde_json::json!({}),
        failing_since_us: None,
        rate_limit: None,
        secrets: vec!["whsec_a".into()],
    };
    let job = |job_id: i64, context: Option<CarriedContext>| DeliveryJob {
        context: context.map(Box::new),
        ..DeliveryJob::first_attempt(job_id, Uuid::from_u128(job_id as u128), Uuid::nil())
    };
    let batch = JobBatch {
        v: BATCH_VERSION,
        jobs: vec![
            BatchedJob {
                job: job(7, Some(context)),
                traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            },
            BatchedJob {
                job: job(8, None),
                traceparent: None,
            },
        ],
    };
    let body = Carried::Batch(batch.clone()).to_body().unwrap();
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(
        text.starts_with(r#"{"v":3,"jobs":[{"job":{"v":1,"jobId":7,"#),
        "{text}"
    );
    assert!(text.ends_with(r#""trigger":"scheduled"}}]}"#), "{text}");
    let mut read = Carried::read(&body).unwrap();
    assert_eq!(read, Carried::Batch(batch));
    assert_eq!((read.len(), read.job_ids()), (2, vec![7, 8]));
    read.forget_context();
    let Carried::Batch(bare) = read else {
        panic!("a batch reads as a batch");
    };
    assert!(bare
        .jobs
        .iter()
        .all(|batched| batched.job.context.is_none()));
    assert!(bare.jobs[0].traceparent.is_some(), "the trace stays");
}
