package reload

import (
	"context"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// maxEventMessage is the longest Event message recorded; a longer refusal
// is cut and ends with "...".
const maxEventMessage = 1000

// PodEvents returns a Watcher.Refused callback that records a refused
// configuration as a Warning Event on promgate's Pod, when POD_NAME and
// POD_NAMESPACE are set (the Deployment sets them from the downward API)
// and promgate may create Events there; otherwise nil (the log and the
// metrics say it).
func PodEvents(restConfig *rest.Config) func(error) {
	name, ns := os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	if name == "" || ns == "" || restConfig == nil {
		return nil
	}
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil
	}
	return func(refused error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := cs.CoreV1().Events(ns).Create(ctx, refusedEvent(ns, name, refused, time.Now()), metav1.CreateOptions{}); err != nil {
			klog.V(2).InfoS("Could not record the refused configuration as an Event (grant create on events in promgate's namespace to get one)", "err", err)
		}
	}
}

// refusedEvent is the Warning Event about refused on Pod ns/name.
func refusedEvent(ns, name string, refused error, at time.Time) *corev1.Event {
	now := metav1.NewTime(at)
	msg := refused.Error()
	if len(msg) > maxEventMessage {
		msg = msg[:maxEventMessage] + "..."
	}
	return &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: name + ".", Namespace: ns},
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: name, APIVersion: "v1"},
		Reason:              "ConfigRefused",
		Message:             msg,
		Type:                corev1.EventTypeWarning,
		Source:              corev1.EventSource{Component: "promgate"},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: "promgate",
		ReportingInstance:   name,
	}
}
