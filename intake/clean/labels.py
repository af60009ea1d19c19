"""What mail clients write above quoted history, per language: data, not code.

Each language lists the field labels of an Outlook-style header block ("From: … Sent: … To: …
Subject: …"), the words that open and end an attribution line ("On … wrote:", "Le … a écrit :"),
the separator lines ("-------- Original message --------") and the device lines ("Sent from my
iPhone"). `intake.clean.patterns` builds its expressions from the union of all languages: a
reply in French from a German mail client is still a reply. To support another language, add
a row here; no code changes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Language:
    """One language's labels; each string holds "|"-separated phrases, matched case-blind."""

    sender: str  # the "From" field: a header block must have one
    fields: str  # the other fields: Sent, Date, To, Cc, Subject, Reply-To
    openers: str = ""  # first words of an attribution: "On", "Le", "Am", "W dniu"
    verbs: str = ""  # last word of an attribution: "wrote", "écrit", "пишет"
    verbs_first: str = ""  # verbs that may come before the name and date: "schrieb am …"
    forward: str = ""  # separator text of a forward: "Forwarded message"
    original: str = ""  # separator text of a reply: "Original message"
    device: str = ""  # device or app lines: "sent from my", "envoyé de mon"


LANGUAGES: dict[str, Language] = {
    "en": Language(
        sender="from",
        fields="sent|date|to|cc|bcc|subject|reply-to",
        openers="on|at",
        verbs="wrote|writes",
        forward="forwarded message|begin forwarded message|forwarded e-mail|forwarded email",
        original="original message|reply message|original e-mail",
        device="sent from|sent with|sent via|sent using|sent by|sent on|get outlook",
    ),
    "fr": Language(
        sender="de",
        fields="envoyé|envoyé le|date|à|a|cc|copie à|objet|répondre à",
        openers="le",
        verbs="écrit",
        forward="message transféré|début du message réexpédié|début du message transféré",
        original="message d'origine|message original",
        device="envoyé de|envoyé depuis|envoyé à partir de|envoyé avec|envoyé par",
    ),
    "de": Language(
        sender="von",
        fields="gesendet|datum|an|cc|kopie|betreff|antwort an",
        openers="am",
        verbs="schrieb|schreibt",
        verbs_first="schrieb",
        forward="weitergeleitete nachricht|anfang der weitergeleiteten nachricht",
        original="ursprüngliche nachricht|originalnachricht|original-nachricht",
        device="gesendet von|gesendet mit|diese nachricht wurde von meinem",
    ),
    "nl": Language(
        sender="van",
        fields="verzonden|datum|aan|cc|onderwerp|beantwoorden",
        openers="op",
        verbs="schreef|geschreven",
        verbs_first="schreef",
        forward="doorgestuurd bericht|begin doorgestuurd bericht",
        original="oorspronkelijk bericht|origineel bericht",
        device="verzonden vanaf|verzonden met|verzonden van|verstuurd vanaf|verstuurd met",
    ),
    "es": Language(
        sender="de",
        fields="enviado|enviado el|enviada|fecha|para|cc|asunto|responder a",
        openers="el|el día",
        verbs="escribió|escribio|escrito",
        forward="mensaje reenviado|inicio del mensaje reenviado",
        original="mensaje original",
        device="enviado desde|enviado con|enviado de",
    ),
    "it": Language(
        sender="da",
        fields="inviato|inviato il|data|a|cc|oggetto|rispondi a|risposta",
        openers="il|il giorno",
        verbs="scritto|scrisse",
        forward="messaggio inoltrato|inizio messaggio inoltrato",
        original="messaggio originale",
        device="inviato da|inviato dal|inviato con|inviato tramite",
    ),
    "pt": Language(
        sender="de",
        fields="enviado|enviada|enviado em|enviada em|data|data de envio|para|cc|assunto",
        openers="em|no dia",
        verbs="escreveu",
        forward="mensagem encaminhada|início da mensagem reencaminhada|mensagem reencaminhada",
        original="mensagem original",
        device="enviado do|enviado de|enviado a partir|enviada do|enviada de",
    ),
    "sv": Language(
        sender="från",
        fields="skickat|datum|till|kopia|cc|ämne",
        openers="den|på",
        verbs="skrev",
        verbs_first="skrev",
        forward="vidarebefordrat meddelande|vidarebefordrat brev",
        original="ursprungligt meddelande|originalmeddelande|originalt meddelande",
        device="skickat från|skickades från",
    ),
    "da": Language(
        sender="fra",
        fields="sendt|dato|til|cc|emne",
        openers="den|d.",
        verbs="skrev",
        verbs_first="skrev",
        forward="videresendt meddelelse|videresendt besked|start på videresendt besked",
        original="oprindelig meddelelse|oprindelig besked|original meddelelse",
        device="sendt fra",
    ),
    "no": Language(
        sender="fra",
        fields="sendt|dato|til|kopi|cc|emne",
        openers="den|på",
        verbs="skrev",
        verbs_first="skrev",
        forward="videresendt melding|videresendt e-post",
        original="opprinnelig melding|original melding",
        device="sendt fra",
    ),
    "fi": Language(
        sender="lähettäjä",
        fields="lähetetty|päivämäärä|vastaanottaja|kopio|aihe",
        openers="kello",
        verbs="kirjoitti",
        verbs_first="kirjoitti",
        forward="välitetty viesti|edelleenlähetetty viesti",
        original="alkuperäinen viesti",
        device="lähetetty iphonesta|lähetetty ipadista|lähetetty puhelimesta|lähetetty androidista",
    ),
    "pl": Language(
        sender="od",
        fields="wysłano|wysłane|data|do|dw|temat",
        openers="dnia|w dniu",
        verbs="napisał|napisała|napisał(a)|pisze",
        forward="wiadomość przekazana|przekazana wiadomość|przekazywana wiadomość",
        original="oryginalna wiadomość|wiadomość oryginalna",
        device="wysłano z|wysłane z|wysłano ze|wysłane ze",
    ),
    "ru": Language(
        sender="от",
        fields="отправлено|дата|кому|копия|тема",
        openers="в",
        verbs="написал|написала|написал(а)|пишет",
        forward="пересылаемое сообщение|пересланное сообщение",
        original="исходное сообщение|оригинальное сообщение",
        device="отправлено с|отправлено из",
    ),
    # Languages of the wider corpus: kept so its replies stay recognised.
    "other": Language(
        sender="feladó|kimden|afsender|frá|发件人|寄件者|差出人",
        fields="elküldve|címzett|tárgy|gönderildi|kime|konu|收件人|主题|日期|件名|宛先|送信日時",
        openers="pe|în|dne|v|у|在",
        verbs="napsal|napsala|пише|написав|scris|írta|yazdı|写道|寫道|작성",
        verbs_first="írta",
        forward="přeposlaná zpráva",
        original="původní zpráva|eredeti üzenet",
        device="odesláno z|从我的|发自我的|寄自我的|從我的",
    ),
}


def phrases(attribute: str) -> tuple[str, ...]:
    """Every language's phrases of one kind ("fields", "verbs", …), without duplicates."""
    found: dict[str, None] = {}
    for language in LANGUAGES.values():
        for phrase in str(getattr(language, attribute)).split("|"):
            if phrase.strip():
                found[phrase.strip().casefold()] = None
    return tuple(found)
